package results

import "slices"

// ByProvider splits a document with several providers into one per
// provider (labs, measurements and summaries of that provider; the run's
// provider set to it), for what must never mix them (rankings). A
// document of one provider is returned as it is.
func (doc *Document) ByProvider() []*Document {
	var names []string
	for _, l := range doc.Labs {
		if !slices.Contains(names, l.Provider) {
			names = append(names, l.Provider)
		}
	}
	if len(names) <= 1 {
		return []*Document{doc}
	}
	var out []*Document
	for _, n := range names {
		d := &Document{Schema: doc.Schema, Run: doc.Run, Fidelity: doc.Fidelity, Labs: []Lab{}, Measurements: []Measurement{}, Summaries: []Summary{}}
		d.Run.Provider = n
		for _, l := range doc.Labs {
			if l.Provider == n {
				d.Labs = append(d.Labs, l)
			}
		}
		for _, m := range doc.Measurements {
			if m.Provider == n {
				d.Measurements = append(d.Measurements, m)
			}
		}
		for _, s := range doc.Summaries {
			if s.Provider == n {
				d.Summaries = append(d.Summaries, s)
			}
		}
		out = append(out, d)
	}
	return out
}
