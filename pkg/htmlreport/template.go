package htmlreport

// pageHTML is the page. The Content-Security-Policy forbids every fetch
// (default-src 'none') and allows only the inline style: the page cannot
// load anything, even if a later edit tried to.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cnilab run {{.Doc.Run.ID}}</title>
<style>
body { font-family: "Liberation Sans", "DejaVu Sans", Arial, sans-serif; margin: 1.5em auto; max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { border-bottom: 2px solid #0072b2; padding-bottom: .15em; margin-top: 2em; }
h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; vertical-align: top; text-align: left; }
th { background: #f0f4f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.host td { color: #555; font-style: italic; }
figure.chart { margin: 1em 0 .3em; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: .85em; color: #444; max-width: 60em; }
.flag { color: #c00000; font-weight: bold; }
.verdict-reproduced { color: #00734d; font-weight: bold; }
.verdict-contradicted { color: #c00000; font-weight: bold; }
.verdict-untestable { color: #777; font-weight: bold; }
tr.tied td { background: #fff8e1; }
.tie { color: #886600; font-weight: bold; }
.note { background: #fff8e1; border-left: 4px solid #e69f00; padding: .5em .8em; }
ul.evidence { margin: 0; padding-left: 1.1em; }
table.generic { font-size: 1em; margin: 0; }
code { font-size: .9em; }
</style>
</head>
<body>
<h1>cnilab run {{.Doc.Run.ID}}</h1>
<p>provider <b>{{join .Providers ", "}}</b>, profile {{.Doc.Run.Profile}}, scenarios {{join .Doc.Run.Scenarios ", "}}; started {{.Doc.Run.Started.Format "2006-01-02 15:04:05 MST"}}{{with .Doc.Run.Finished}}, finished {{.Format "2006-01-02 15:04:05 MST"}}{{end}}.<br>
host: kernel {{.Doc.Run.Host.Kernel}}, {{.Doc.Run.Host.CPUs}} CPUs. Settings: {{.Doc.Run.Settings.DurationSeconds}} s per window after {{.Doc.Run.Settings.OmitSeconds}} s omitted, {{.Doc.Run.Settings.Repeats}} repeats interleaved across labs, statistic: {{.Doc.Run.Settings.Statistic}}{{with .Doc.Run.Settings.OrderSeed}}, lab order shuffled per repeat (seed {{.}}){{end}}.</p>
{{range .Providers}}{{if eq . "netns"}}<p class="note">netns figures come from <b>datapath models</b>: each CNI's forwarding design rebuilt with the same kernel mechanisms in network namespaces, measured with real iperf3. No CNI agent or control plane runs. <i>faithful</i>: the same devices, routes and rules as the CNI builds; <i>approximate</i>: the mechanism is modelled (see the lab notes).</p>{{end}}{{if eq . "kind"}}<p class="note">kind figures come from the <b>real CNIs</b> (their own agents and images) on kind clusters: one control plane and two workers per lab, nodes as containers on one Docker network.</p>{{end}}{{end}}

<h2 id="labs">Labs</h2>
<table>
<tr><th>lab</th><th>CNI</th><th>provider</th><th>fidelity</th><th>status</th><th>datapath</th><th>services</th><th>pod MTU</th><th>up (s)</th><th>notes</th></tr>
{{range .Doc.Labs}}<tr><td>{{.Name}}</td><td>{{.CNI}}</td><td>{{.Provider}}</td><td>{{.Fidelity}}</td><td>{{.Status}}</td><td>{{.Datapath}}</td><td>{{.Services}}</td><td class="num">{{if .PodMTU}}{{.PodMTU}}{{else}}–{{end}}</td><td class="num">{{printf "%.1f" .UpSeconds}}</td><td>{{with .Error}}<span class="flag">{{.}}</span> {{end}}{{if .Notes}}<details><summary>notes ({{len .Notes}})</summary><ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul></details>{{end}}</td></tr>
{{end}}</table>

{{if .Flagged}}<h2 id="flags">Flagged figures</h2>
<p>Figures with a doubt. A figure <span class="flag">above its host baseline</span> beyond both intervals is impossible for a datapath built on that host: it is an artefact (placement, noise) and kept out of the rankings until explained.</p>
<table>
<tr><th>test</th><th>lab</th><th>provider</th><th>figures</th><th>median</th><th>doubt</th></tr>
{{range .Flagged}}<tr><td>{{.Test}}</td><td>{{.Lab}}</td><td>{{.Provider}}</td><td>{{.Metric}}</td><td class="num">{{.Median}}</td><td>{{if .AboveHost}}<span class="flag">above host</span> {{end}}{{join .Doubts "; "}}</td></tr>
{{end}}</table>
{{end}}

{{if .Tests}}<h2 id="tests">Figures per test</h2>
{{range .Tests}}<h3>{{.Title}}</h3>
<figure class="chart" id="{{.Chart.ID}}" data-series="{{len .Chart.Series}}">{{svg .Chart.SVG}}<figcaption>{{.Chart.Caption}}</figcaption></figure>
<table>
<tr><th>lab</th><th>provider</th><th>fidelity</th><th>median ({{.Unit}})</th><th>interval</th><th>coverage</th><th>n</th><th>ratio to host</th><th>doubts</th></tr>
{{range .Rows}}<tr{{if .Host}} class="host"{{end}}><td>{{.Lab}}</td><td>{{.Provider}}</td><td>{{.Fidelity}}</td><td class="num">{{.Median}}</td><td class="num">{{.Interval}}</td><td class="num">{{.Coverage}}</td><td class="num">{{.N}}</td><td class="num">{{.Ratio}}</td><td>{{range .Doubts}}<span class="flag">{{.}}</span> {{end}}</td></tr>
{{end}}</table>
{{end}}{{end}}

{{if .CDFs}}<h2 id="latency">Latency distributions</h2>
{{range .CDFs}}<h3>{{.Title}}</h3>
<figure class="chart" id="{{.ID}}" data-series="{{len .Series}}">{{svg .SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{end}}{{end}}

{{if .Scale}}<h2 id="services-scale">services-scale</h2>
{{range .Scale}}<h3>{{.Title}}</h3>
<figure class="chart" id="{{.ID}}" data-series="{{len .Series}}">{{svg .SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{end}}{{end}}

{{with .Policy}}<h2 id="policy">NetworkPolicy</h2>
{{if .Matrix}}<h3>Functional matrix</h3>
<p>{{.MatrixIntro}}</p>
<table class="policy"><tr>{{range .MatrixHead}}<th>{{.}}</th>{{end}}</tr>
{{range .Matrix}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{with .Notes}}<ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Cost}}<h3>Cost of K policies</h3>
<p>{{.CostIntro}}</p>
<table class="policy"><tr>{{range .CostHead}}<th>{{.}}</th>{{end}}</tr>
{{range .Cost}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{end}}

{{if .Ranking}}<h2 id="ranking">Ranking per environment</h2>
<p>Computed by <code>cnilab rank</code> from this run ({{.Ranking.Input.Title}}). Each CNI is placed by its best-scoring variant; scores are 0–100 (weighted mean of normalised criteria, 1 = best candidate), with the score's range when every figure sits at either end of its interval. CNIs whose ranges overlap share a place (<b>1=</b>): the data cannot order them. Deciding evidence: the three rows that moved the score most.</p>
{{with .Ranking.Input.Notes}}<ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{$page := .}}{{range $i, $env := .Ranking.Environments}}<h3 id="env-{{$env.Name}}">{{$env.Name}} — {{$env.Title}}</h3>
<p>{{$env.Description}}. Compares {{$env.Variants}} variants.{{with $env.Requires}} Requires: {{join . "; "}}.{{end}}</p>
<table>
<tr><th>weight</th><th>criterion</th><th>rule</th><th>why</th></tr>
{{range $env.Weights}}<tr><td class="num">{{.Weight}}</td><td>{{.Criterion}}</td><td>{{.Rule}}{{with .Skipped}} — <i>skipped: {{.}}</i>{{end}}</td><td>{{.Why}}</td></tr>
{{end}}</table>
{{if or $env.Ranking $env.Excluded}}<table class="ranking">
<tr><th>place</th><th>CNI</th><th>variant</th><th>score</th><th>deciding evidence</th></tr>
{{range $j, $e := $env.Ranking}}<tr{{if $e.TiedWith}} class="tied"{{end}}><td class="num">{{$e.Place}}{{if $e.TiedWith}}={{end}}</td><td>{{$e.CNI}}</td><td>{{$e.Variant}}</td><td class="num">{{printf "%.1f" $e.Score}}{{if ne $e.ScoreLow $e.ScoreHigh}}<br><small>{{printf "%.1f–%.1f" $e.ScoreLow $e.ScoreHigh}}</small>{{end}}</td><td>{{with $e.TiedWith}}<div class="tie">tied with {{join . ", "}}{{with $e.Tie}}: {{.}}{{end}}</div>{{end}}<ul class="evidence">{{range deciding $e.Evidence 3}}<li>{{evidence .}}</li>{{end}}</ul>{{range $k, $v := index2 $page.EntryExtras $i $j}}<div><b>{{$k}}</b>: {{raw $v}}</div>{{end}}</td></tr>
{{end}}{{range $env.Excluded}}<tr><td class="num">–</td><td>{{.CNI}}</td><td></td><td>excluded</td><td>{{.Reason}}</td></tr>
{{end}}</table>{{end}}
{{if not $env.Ranking}}<p>No CNI qualifies.</p>{{end}}
{{with $env.NotEligible}}<p>Not compared: {{join . ", "}}.</p>{{end}}
{{with $env.DataOnly}}<p>Without the requirements: {{join . " > "}}.</p>{{end}}
{{range $k, $v := envExtra $page.EnvExtras $i}}<p><b>{{$k}}</b>:</p>{{raw $v}}{{end}}
{{end}}{{end}}

{{if .Claims.Rows}}<h2 id="claims">Published claims</h2>
<p>Each claim's verdict computed from this run, beside the verdicts computed from the embedded published datasets.</p>
<table class="claims">
<tr><th>claim</th>{{range .Claims.Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Claims.Rows}}<tr><td><b>{{.ID}}</b> {{.Text}}</td>{{range .Cells}}<td><span class="verdict-{{.Verdict}}">{{.Verdict}}</span>: {{.Reason}}</td>{{end}}</tr>
{{end}}</table>
{{end}}

{{if .Fidelity}}<h2 id="fidelity">Fidelity: netns models against the real CNIs</h2>
{{.Fidelity}}
{{end}}
{{range $k, $v := .Extras}}<h2 id="extra-{{$k}}">{{$k}}</h2>
{{$v}}
{{end}}
<p style="font-size:.8em;color:#777">Written by cnilab from results.json ({{.Doc.Schema}}). Self-contained: no script, and nothing loaded from the network.</p>
</body>
</html>
`
