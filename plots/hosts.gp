# hosts.gp - host against host: one bar per host for each configuration
# (median over repetitions); left the absolute throughput, right (when
# fracfile is not '') the same as a fraction of each host's own floor.
#
# Variables (set by scripts/plot): plotdir, fmt, outfile, datafile and
# fracfile (header '"configuration" "host1" ...', then one row per
# configuration; NaN = not measured there), nhosts, ttl.
reset
load plotdir.'/common.gp'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics lc rgb '#dddddd'
set xtics rotate by -35 left nomirror
set yrange [0:*]
set key top right
set datafile missing 'NaN'
if (fracfile ne '') {
	set multiplot layout 1,2 title ttl
	set title 'throughput'
	set ylabel 'Mops/s'
	plot for [i=2:nhosts + 1] datafile using i:xtic(1) title columnheader(i)
	set title 'fraction of the host''s own floor'
	set ylabel 'ops/s / floor ops/s'
	plot for [i=2:nhosts + 1] fracfile using i:xtic(1) title columnheader(i)
	unset multiplot
} else {
	set title ttl
	set ylabel 'Mops/s'
	plot for [i=2:nhosts + 1] datafile using i:xtic(1) title columnheader(i)
}
unset output
