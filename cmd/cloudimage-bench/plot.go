package main

import (
	"flag"
	"fmt"
	"image/color"
	"io"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

func plotCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	out := fs.String("o", "p99.png", "the PNG to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("plot: give result JSON files, one per catalog size")
	}
	var all []*Results
	for _, path := range fs.Args() {
		var r Results
		if err := readJSON(path, &r); err != nil {
			return err
		}
		all = append(all, &r)
	}
	if err := plotP99(all, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

// plotP99 draws each scenario's p99 latency against N, on log axes.
func plotP99(all []*Results, path string) error {
	slices.SortFunc(all, func(a, b *Results) int { return a.N - b.N })
	series := map[string]plotter.XYs{}
	var names []string
	for _, res := range all {
		for _, r := range res.Scenarios {
			if _, ok := series[r.Name]; !ok {
				names = append(names, r.Name)
			}
			series[r.Name] = append(series[r.Name], plotter.XY{X: float64(res.N), Y: max(r.P99, 0.001)})
		}
	}
	p := plot.New()
	p.Title.Text = "p99 latency against catalog size"
	p.X.Label.Text = "images (N)"
	p.Y.Label.Text = "p99 latency (ms)"
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	p.Legend.Top = true // the top left holds the slow no-limit list
	for i, name := range names {
		line, points, err := plotter.NewLinePoints(series[name])
		if err != nil {
			return err
		}
		c := palette[i%len(palette)]
		line.Color, points.Color = c, c
		points.Shape = plotShapes[i%len(plotShapes)]
		p.Add(line, points)
		p.Legend.Add(name, line, points)
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

var plotShapes = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PlusGlyph{},
	draw.CrossGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{},
}

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff},
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff},
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff},
}
