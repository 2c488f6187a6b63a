package results

import "testing"

func TestBetter(t *testing.T) {
	for metric, want := range map[string]Direction{
		ThroughputBps:   Higher,
		TransactionRate: Higher,
		MCPUPerGbit:     Lower,
		LatencyP99:      Lower,
		Retransmits:     Lower,
		ComponentMetric(PodsCPUCores, "kube-proxy"): Lower,
		PodMTU:           Neutral,
		SentBps:          Neutral,
		RuleCount:        Neutral,
		ConnectSamples:   Neutral,
		"no_such_metric": Neutral,
	} {
		if got := Better(metric); got != want {
			t.Errorf("Better(%s) = %s, want %s", metric, got, want)
		}
		if LowerIsBetter(metric) != (want == Lower) {
			t.Errorf("LowerIsBetter(%s) = %v", metric, LowerIsBetter(metric))
		}
	}
}

// Every metric cnilab writes has a direction on purpose, so none falls to
// Neutral by being forgotten.
func TestEveryMetricHasADirection(t *testing.T) {
	for metric := range units {
		if _, ok := better[metric]; !ok {
			t.Errorf("%s has a unit but no direction", metric)
		}
	}
}
