// Command plot draws the summary lines of test/sim runs (make sim) as an
// SVG: one panel per figure against the number of routers, log-log, one
// series per input file.
//
//	go run ./test/sim/plot -o docs/scale.svg before=runs-before.txt after=runs-after.txt
//
// Each file holds the output of runs: their summary lines (peers=N
// converge_s=X ...), in any order, each with the "at rest" line before it
// (plotted as rest_bytes_per_peer_s); other lines are ignored.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// figure is one panel: a key of the summary line and its title.
type figure struct{ key, title string }

var figures = []figure{
	{"converge_s", "worst convergence of a change (virtual s)"},
	{"rest_bytes_per_peer_s", "control bytes per router per s, at rest"},
	{"gossip_bytes_per_peer_s", "control bytes per router per s, worst"},
	{"route_ms", "route computation (ms, wall clock)"},
	{"mem_per_peer_kib", "heap per router (KiB)"},
}

// series is one input file: its label and its runs by peers.
type series struct {
	label string
	runs  []map[string]float64
}

func main() {
	out := flag.String("o", "", "output SVG file (default stdout)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: plot [-o file.svg] label=runs.txt ...")
		os.Exit(2)
	}
	var all []series
	for _, arg := range flag.Args() {
		label, file, ok := strings.Cut(arg, "=")
		if !ok {
			label, file = arg, arg
		}
		s, err := readSeries(label, file)
		if err != nil {
			slog.Error("plot", "err", err)
			os.Exit(1)
		}
		all = append(all, s)
	}
	w := io.Writer(os.Stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			slog.Error("plot", "err", err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	if _, err := io.WriteString(w, render(all)); err != nil {
		slog.Error("plot", "err", err)
		os.Exit(1)
	}
}

// readSeries reads the summary lines of file.
func readSeries(label, file string) (series, error) {
	f, err := os.Open(file)
	if err != nil {
		return series{}, fmt.Errorf("read runs: %w", err)
	}
	defer f.Close()
	s := series{label: label}
	sc := bufio.NewScanner(f)
	rest := math.NaN()
	for sc.Scan() {
		if m := restLine.FindStringSubmatch(sc.Text()); m != nil {
			rest, _ = strconv.ParseFloat(m[1], 64)
		}
		if r, ok := parseLine(sc.Text()); ok {
			if !math.IsNaN(rest) {
				r["rest_bytes_per_peer_s"] = rest
			}
			rest = math.NaN()
			s.runs = append(s.runs, r)
		}
	}
	if err := sc.Err(); err != nil {
		return series{}, fmt.Errorf("read %s: %w", file, err)
	}
	if len(s.runs) == 0 {
		return series{}, fmt.Errorf("%s: no summary lines", file)
	}
	slices.SortFunc(s.runs, func(a, b map[string]float64) int { return int(a["peers"] - b["peers"]) })
	return s, nil
}

// parseLine parses "peers=N key=value ..."; ok is false for other lines.
func parseLine(line string) (map[string]float64, bool) {
	if !strings.HasPrefix(line, "peers=") {
		return nil, false
	}
	r := map[string]float64{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, false
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, false
		}
		r[k] = x
	}
	return r, true
}

// restLine is the simulation's line of the control bytes at rest.
var restLine = regexp.MustCompile(`^sim: at rest for .*: ([0-9.]+) control bytes/s per router`)

var colours = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}

const (
	panelW, panelH = 420, 300
	marginL        = 70
	marginB        = 45
	marginT        = 30
	marginR        = 20
)

// render draws a grid of log-log panels, three a row.
func render(all []series) string {
	var b strings.Builder
	rows := (len(figures) + 2) / 3
	width, height := 3*panelW, rows*panelH+30
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, fig := range figures {
		x0, y0 := (i%3)*panelW, (i/3)*panelH
		panel(&b, all, fig, x0, y0)
	}
	// Legend.
	for i, s := range all {
		x := 20 + i*300
		y := rows*panelH + 15
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`, x, y, x+25, y, colours[i%len(colours)])
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x+30, y+4, escape(s.label))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// panel draws one figure against peers on log scales.
func panel(b *strings.Builder, all []series, fig figure, x0, y0 int) {
	var xs, ys []float64
	for _, s := range all {
		for _, r := range s.runs {
			if v, ok := r[fig.key]; ok && v > 0 {
				xs, ys = append(xs, r["peers"]), append(ys, v)
			}
		}
	}
	if len(xs) == 0 {
		return
	}
	xlo, xhi := decades(slices.Min(xs), slices.Max(xs))
	ylo, yhi := decades(slices.Min(ys), slices.Max(ys))
	pw, ph := float64(panelW-marginL-marginR), float64(panelH-marginT-marginB)
	px := func(x float64) float64 {
		return float64(x0+marginL) + pw*(math.Log10(x)-xlo)/(xhi-xlo)
	}
	py := func(y float64) float64 {
		return float64(y0+marginT) + ph*(1-(math.Log10(y)-ylo)/(yhi-ylo))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="13">%s</text>`+"\n", x0+marginL, y0+18, escape(fig.title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", x0+marginL, y0+marginT, pw, ph)
	for d := xlo; d <= xhi+1e-9; d++ {
		for _, m := range []float64{1, 3} {
			v := m * math.Pow(10, d)
			if math.Log10(v) > xhi+1e-9 {
				continue
			}
			x := px(v)
			fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.0f" stroke="#eee"/>`, x, y0+marginT, x, float64(y0+marginT)+ph)
			fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x, float64(y0+marginT)+ph+15, num(v))
		}
	}
	for d := ylo; d <= yhi+1e-9; d++ {
		v := math.Pow(10, d)
		y := py(v)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/>`, x0+marginL, y, float64(x0+marginL)+pw, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", x0+marginL-5, y+4, num(v))
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%d" text-anchor="middle">routers</text>`+"\n", float64(x0+marginL)+pw/2, y0+panelH-8)
	for i, s := range all {
		var pts []string
		for _, r := range s.runs {
			if v, ok := r[fig.key]; ok && v > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(r["peers"]), py(v)))
			}
		}
		c := colours[i%len(colours)]
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), c)
		for _, p := range pts {
			x, y, _ := strings.Cut(p, ",")
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`, x, y, c)
		}
		b.WriteString("\n")
	}
}

// decades returns the whole powers of ten around [lo, hi].
func decades(lo, hi float64) (float64, float64) {
	a, z := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if z <= a {
		z = a + 1
	}
	return a, z
}

func num(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
