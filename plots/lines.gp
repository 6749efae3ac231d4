# lines.gp - a figure against the number of workers, one line per series,
# each point the median over repetitions with a min-max bar.
#
# Variables (set by scripts/plot): plotdir, fmt, outfile, datafile (blocks
# separated by two blank lines, one per series, rows "workers median min
# max"), nseries, titles (one quoted title per series), ttl, ylabel,
# logy (1 = log scale), xmin, xmax (worker range).
reset
load plotdir.'/common.gp'
set title ttl
set xlabel 'workers (processes or threads: see mode)'
set ylabel ylabel
set grid ytics lc rgb '#dddddd'
set key below height 1
set xrange [xmin - 0.5 : xmax + 0.5]
if (xmax - xmin <= 16) { set xtics 1 }
if (logy) { set logscale y } else { set yrange [0:*] }
set bars 2
# gnuplot has 8 line colours: from the ninth series on, the colours come
# round again with another dash and point type, so no two lines look alike
# (a function: "dt (" would start a dash pattern)
dash(i) = i / 8 + 1
plot for [i=0:nseries-1] datafile index i using 1:2:3:4 \
	with yerrorlines lc ((i % 8) + 1) dt dash(i) lw 2 \
	pt (7 + 2 * (i / 8)) ps 0.8 title word(titles, i + 1)
unset output
