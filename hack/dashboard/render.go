package main

// The renderer: every panel of the dashboard drawn at its grid position on one HTML page, from
// its own queries evaluated with Prometheus' query_range API (Grafana's interval variables
// replaced by fixed durations). It draws what the panel types mean (stat: last value with the
// threshold colour; bar gauge: last value per series; time series: lines; state timeline: bands
// by value mapping) in a plain style of its own: it is not Grafana.

import (
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Grafana's grid: 24 columns; one height unit is 30 px.
const (
	pageWidth = 1800
	colWidth  = pageWidth / 24
	rowHeight = 30
	header    = 70
)

var palette = []string{"#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#705da0", "#37872d", "#fade2a"}

type panelJSON struct {
	ID          int                      `json:"id"`
	Type        string                   `json:"type"`
	Title       string                   `json:"title"`
	GridPos     struct{ H, W, X, Y int } `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit       string   `json:"unit"`
			Max        *float64 `json:"max"`
			Thresholds *struct {
				Steps []struct {
					Color string   `json:"color"`
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
			Mappings []struct {
				Type    string `json:"type"`
				Options map[string]struct {
					Text  string `json:"text"`
					Color string `json:"color"`
				} `json:"options"`
			} `json:"mappings"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
}

type series struct {
	name   string
	times  []float64
	values []float64 // NaN where the query had no sample
}

type renderer struct {
	prometheus   string
	from, to     float64
	step         float64
	rateInterval string
	client       http.Client
}

func render(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	prom := fs.String("prometheus", "", "Prometheus base URL")
	from := fs.Int64("from", 0, "range start, unix seconds")
	to := fs.Int64("to", 0, "range end, unix seconds")
	step := fs.Duration("step", 10*time.Second, "query_range step ($__interval)")
	rate := fs.String("rate-interval", "1m", "what $__rate_interval becomes")
	out := fs.String("out", "", "HTML file to write")
	note := fs.String("note", "", "a line under the title saying where the data comes from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *prom == "" || *from <= 0 || *to <= *from || *out == "" || fs.NArg() != 1 {
		return fmt.Errorf("need -prometheus, -from < -to, -out and one dashboard file")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var d struct {
		Title  string      `json:"title"`
		Panels []panelJSON `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return err
	}
	r := renderer{prometheus: strings.TrimRight(*prom, "/"), from: float64(*from), to: float64(*to),
		step: step.Seconds(), rateInterval: *rate, client: http.Client{Timeout: 30 * time.Second}}
	var b strings.Builder
	bottom := 0
	for _, p := range d.Panels {
		bottom = max(bottom, p.GridPos.Y+p.GridPos.H)
	}
	fmt.Fprintf(&b, `<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;background:#111217;color:#ccccdc;font:13px Inter,Helvetica,Arial,sans-serif;width:%dpx;height:%dpx;position:relative}
.hd{position:absolute;left:8px;top:8px}.hd h1{margin:0;font-size:20px;color:#fff}.hd p{margin:4px 0 0;color:#9fa7b3}
.p{position:absolute;box-sizing:border-box;background:#181b1f;border:1px solid #2c3235;border-radius:2px;padding:4px 8px;overflow:hidden}
.p h2{margin:0 0 2px;font-size:13px;font-weight:500;color:#ccccdc;white-space:nowrap;overflow:hidden}
.row{position:absolute;font-size:16px;color:#fff;font-weight:500;padding-top:6px}
.lg{font-size:11px;line-height:14px;max-height:44px;overflow:hidden}.lg span{margin-right:10px;white-space:nowrap}
.lg i{display:inline-block;width:12px;height:3px;margin-right:4px;vertical-align:middle}
.stat{display:flex;justify-content:space-around;align-items:center;height:calc(100%% - 22px)}
.stat div{text-align:center}.stat b{font-size:40px;font-weight:500}.stat small{display:block;color:#9fa7b3}
.err{color:#f2495c;font-size:11px}
</style></head><body>
<div class="hd"><h1>%s</h1><p>%s</p></div>
`, pageWidth, header+bottom*rowHeight+10, html.EscapeString(d.Title), html.EscapeString(*note))
	for _, p := range d.Panels {
		x, y := p.GridPos.X*colWidth, header+p.GridPos.Y*rowHeight
		w, h := p.GridPos.W*colWidth, p.GridPos.H*rowHeight
		if p.Type == "row" {
			fmt.Fprintf(&b, `<div class="row" style="left:%dpx;top:%dpx;width:%dpx;height:%dpx">%s</div>`+"\n",
				x+4, y, w-8, h, html.EscapeString(p.Title))
			continue
		}
		fmt.Fprintf(&b, `<div class="p" style="left:%dpx;top:%dpx;width:%dpx;height:%dpx"><h2>%s</h2>`,
			x+2, y+2, w-4, h-4, html.EscapeString(p.Title))
		var all []series
		for _, t := range p.Targets {
			s, err := r.query(t.Expr, t.LegendFormat)
			if err != nil {
				fmt.Fprintf(&b, `<div class="err">%s: %s</div>`, t.RefID, html.EscapeString(err.Error()))
				continue
			}
			all = append(all, s...)
		}
		switch p.Type {
		case "stat":
			b.WriteString(stat(p, all))
		case "bargauge":
			b.WriteString(barGauge(p, all, w-16))
		case "timeseries":
			b.WriteString(r.timeSeries(p, all, w-16, h-70))
		case "state-timeline":
			b.WriteString(r.stateTimeline(p, all, w-16, h-70))
		default:
			fmt.Fprintf(&b, `<div class="err">panel type %s is not drawn</div>`, html.EscapeString(p.Type))
		}
		b.WriteString("</div>\n")
	}
	b.WriteString("</body></html>\n")
	return os.WriteFile(*out, []byte(b.String()), 0o644)
}

// query evaluates one expression over the range; each result series is named by legendFormat.
func (r *renderer) query(expr, legend string) ([]series, error) {
	expr = strings.NewReplacer("$__rate_interval", r.rateInterval,
		"$__interval", fmt.Sprintf("%ds", int(r.step)),
		"$__range", fmt.Sprintf("%ds", int(r.to-r.from))).Replace(expr)
	q := url.Values{"query": {expr}, "start": {ftoa(r.from)}, "end": {ftoa(r.to)}, "step": {ftoa(r.step)}}
	resp, err := r.client.Get(r.prometheus + "/api/v1/query_range?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var res struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("query_range: %s", body)
	}
	if res.Status != "success" {
		return nil, fmt.Errorf("query_range: %s", res.Error)
	}
	var out []series
	for _, m := range res.Data.Result {
		s := series{name: legendName(legend, m.Metric)}
		byTime := map[float64]float64{}
		for _, v := range m.Values {
			t, _ := v[0].(float64)
			str, _ := v[1].(string)
			if f, err := strconv.ParseFloat(str, 64); err == nil {
				byTime[t] = f
			}
		}
		for t := r.from; t <= r.to; t += r.step {
			s.times = append(s.times, t)
			if f, ok := byTime[t]; ok {
				s.values = append(s.values, f)
			} else {
				s.values = append(s.values, math.NaN())
			}
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

var legendVar = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

func legendName(format string, metric map[string]string) string {
	if format == "" {
		return fmt.Sprint(metric)
	}
	return strings.TrimSpace(legendVar.ReplaceAllStringFunc(format, func(m string) string {
		return metric[legendVar.FindStringSubmatch(m)[1]]
	}))
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func last(s series) float64 {
	for i := len(s.values) - 1; i >= 0; i-- {
		if !math.IsNaN(s.values[i]) {
			return s.values[i]
		}
	}
	return math.NaN()
}

func format(v float64, unit string) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	switch unit {
	case "percentunit":
		return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
	case "s":
		if math.Abs(v) < 1 && v != 0 {
			return strconv.FormatFloat(v*1000, 'g', 3, 64) + " ms"
		}
		return strconv.FormatFloat(v, 'g', 3, 64) + " s"
	case "ops":
		return strconv.FormatFloat(v, 'g', 3, 64) + " ops/s"
	case "pps":
		return strconv.FormatFloat(v, 'g', 3, 64) + " p/s"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

var namedColors = map[string]string{"green": "#73bf69", "red": "#f2495c", "orange": "#ff9830", "yellow": "#fade2a", "blue": "#5794f2"}

func color(name string) string {
	if c, ok := namedColors[name]; ok {
		return c
	}
	return name
}

// thresholdColor is the colour of the highest step at or below v (the first step has no value).
func thresholdColor(p panelJSON, v float64) string {
	c := "#ccccdc"
	if t := p.FieldConfig.Defaults.Thresholds; t != nil && !math.IsNaN(v) {
		for _, s := range t.Steps {
			if s.Value == nil || v >= *s.Value {
				c = color(s.Color)
			}
		}
	}
	return c
}

func stat(p panelJSON, all []series) string {
	var b strings.Builder
	b.WriteString(`<div class="stat">`)
	if len(all) == 0 {
		b.WriteString(`<div><b style="color:#9fa7b3">No data</b></div>`)
	}
	for _, s := range all {
		v := last(s)
		fmt.Fprintf(&b, `<div><b style="color:%s">%s</b><small>%s</small></div>`,
			thresholdColor(p, v), format(v, p.FieldConfig.Defaults.Unit), html.EscapeString(s.name))
	}
	b.WriteString(`</div>`)
	return b.String()
}

func barGauge(p panelJSON, all []series, width int) string {
	var b strings.Builder
	if len(all) == 0 {
		return `<div style="color:#9fa7b3">No data</div>`
	}
	maxV := 1.0
	if m := p.FieldConfig.Defaults.Max; m != nil {
		maxV = *m
	}
	for _, s := range all {
		v := last(s)
		frac := 0.0
		if !math.IsNaN(v) {
			frac = math.Max(0, math.Min(1, v/maxV))
		}
		c := thresholdColor(p, v)
		fmt.Fprintf(&b, `<div style="margin:2px 0"><div style="font-size:11px;line-height:13px">%s <span style="float:right;color:%s">%s</span></div>`+
			`<div style="background:#22252b;height:8px;width:%dpx"><div style="background:%s;height:8px;width:%dpx"></div></div></div>`,
			html.EscapeString(s.name), c, format(v, p.FieldConfig.Defaults.Unit), width, c, int(frac*float64(width)))
	}
	return b.String()
}

func legend(all []series) string {
	var b strings.Builder
	b.WriteString(`<div class="lg">`)
	for i, s := range all {
		fmt.Fprintf(&b, `<span><i style="background:%s"></i>%s</span>`, palette[i%len(palette)], html.EscapeString(s.name))
	}
	b.WriteString(`</div>`)
	return b.String()
}

func (r *renderer) xAxis(b *strings.Builder, left, width, y int) {
	for i := 0; i <= 4; i++ {
		t := r.from + (r.to-r.from)*float64(i)/4
		x := left + width*i/4
		anchor := map[int]string{0: "start", 4: "end"}[i]
		if anchor == "" {
			anchor = "middle"
		}
		fmt.Fprintf(b, `<text x="%d" y="%d" fill="#9fa7b3" font-size="10" text-anchor="%s">%s</text>`,
			x, y, anchor, time.Unix(int64(t), 0).UTC().Format("15:04:05"))
	}
}

func (r *renderer) timeSeries(p panelJSON, all []series, width, height int) string {
	const left = 62
	plotW, plotH := width-left-4, height-22
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range all {
		for _, v := range s.values {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return `<div style="color:#9fa7b3;padding-top:40px;text-align:center">No data</div>`
	}
	lo = math.Min(lo, 0)
	if hi <= lo {
		hi = lo + 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d">`, width, height)
	for i := 0; i <= 4; i++ {
		y := 4 + plotH - plotH*i/4
		v := lo + (hi-lo)*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#2c3235"/><text x="%d" y="%d" fill="#9fa7b3" font-size="10" text-anchor="end">%s</text>`,
			left, left+plotW, y, y, left-4, y+3, html.EscapeString(format(v, p.FieldConfig.Defaults.Unit)))
	}
	r.xAxis(&b, left, plotW, height-2)
	for i, s := range all {
		var path strings.Builder
		pen := "M"
		for j, v := range s.values {
			if math.IsNaN(v) {
				pen = "M"
				continue
			}
			x := float64(left) + float64(plotW)*(s.times[j]-r.from)/(r.to-r.from)
			y := 4 + float64(plotH) - float64(plotH)*(v-lo)/(hi-lo)
			fmt.Fprintf(&path, "%s%.1f %.1f ", pen, x, y)
			pen = "L"
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, path.String(), palette[i%len(palette)])
	}
	b.WriteString(`</svg>`)
	b.WriteString(legend(all))
	return b.String()
}

// mapped is the text and colour a value mapping gives v ("" when none matches).
func mapped(p panelJSON, v float64) (string, string) {
	key := strconv.FormatFloat(v, 'f', -1, 64)
	for _, m := range p.FieldConfig.Defaults.Mappings {
		if o, ok := m.Options[key]; ok && m.Type == "value" {
			return o.Text, color(o.Color)
		}
	}
	return "", ""
}

func (r *renderer) stateTimeline(p panelJSON, all []series, width, height int) string {
	if len(all) == 0 {
		return `<div style="color:#9fa7b3;padding-top:40px;text-align:center">No data</div>`
	}
	// Room for the longest series name (about 6 px a character at 11 px), up to half the panel.
	labelW := 40
	for _, s := range all {
		labelW = max(labelW, 6*len(s.name)+10)
	}
	labelW = min(labelW, width/2)
	plotW := width - labelW - 4
	band := math.Min(28, float64(height-16)/float64(len(all)))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d">`, width, height)
	for i, s := range all {
		y := float64(i) * band
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#ccccdc" font-size="%.0f" text-anchor="end">%s</text>`,
			labelW-6, y+band*0.65, math.Min(11, band*0.8), html.EscapeString(s.name))
		for j, v := range s.values {
			if math.IsNaN(v) {
				continue
			}
			x0 := float64(labelW) + float64(plotW)*(s.times[j]-r.from)/(r.to-r.from)
			x1 := x0 + float64(plotW)*r.step/(r.to-r.from)
			_, c := mapped(p, v)
			if c == "" {
				c = "#8ab8ff"
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x0, y+1, x1-x0+0.3, band*0.9-1, c)
		}
	}
	r.xAxis(&b, labelW, plotW, height-2)
	b.WriteString(`</svg>`)
	// The legend shows what the mappings mean, as Grafana's does for a state timeline.
	b.WriteString(`<div class="lg">`)
	for _, m := range p.FieldConfig.Defaults.Mappings {
		keys := make([]string, 0, len(m.Options))
		for k := range m.Options {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			o := m.Options[k]
			fmt.Fprintf(&b, `<span><i style="background:%s"></i>%s (%s)</span>`, color(o.Color), html.EscapeString(o.Text), k)
		}
	}
	b.WriteString(`</div>`)
	return b.String()
}
