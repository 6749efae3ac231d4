# common.gp - terminal and output for every template (loaded by them).
# Variables: fmt ('png' or 'svg'), outfile, height (pixels; 600 if
# unset: scripts/plot makes room for long keys).  PNG through cairo when
# this gnuplot has it (anti-aliased), else the libgd png terminal.
# noenhanced: names like alloc_free must not turn into subscripts.
if (!exists("height")) { height = 600 }
if (fmt eq 'svg') {
	set terminal svg size 960,height dynamic noenhanced font 'sans,12' background '#ffffff'
} else {
	if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
		set terminal pngcairo size 960,height noenhanced font 'sans,10' background '#ffffff'
	} else {
		set terminal png size 960,height noenhanced background '#ffffff'
	}
}
set output outfile
