# latency.gp - sampled latency percentiles against workers, log scale: per
# series p50 (solid), p99 (dashed) and p99.9 (dotted), each the median
# over repetitions.
#
# Variables (set by scripts/plot): plotdir, fmt, outfile, datafile (blocks,
# one per series, rows "workers p50 p99 p999" in ns; '?' = no sample),
# nseries, titles, ttl, xmin, xmax.
reset
load plotdir.'/common.gp'
set title ttl
set xlabel 'workers (processes or threads: see mode)'
set ylabel 'latency (ns, log scale)'
set logscale y
set grid ytics mytics lc rgb '#dddddd'
set key below height 1
set xrange [xmin - 0.5 : xmax + 0.5]
if (xmax - xmin <= 16) { set xtics 1 }
set datafile missing '?'
plot for [i=0:nseries-1] datafile index i using 1:2 with linespoints \
	lc i + 1 dt 1 lw 2 pt 7 ps 0.7 title word(titles, i + 1).' p50', \
     for [i=0:nseries-1] datafile index i using 1:3 with linespoints \
	lc i + 1 dt 2 lw 2 pt 5 ps 0.7 title word(titles, i + 1).' p99', \
     for [i=0:nseries-1] datafile index i using 1:4 with linespoints \
	lc i + 1 dt 3 lw 2 pt 9 ps 0.7 title word(titles, i + 1).' p99.9'
unset output
