package servicescale

import (
	"fmt"
	"slices"
	"time"

	"github.com/cnilab/cnilab/pkg/config"
)

// FromConfig turns scenarios/services-scale.yaml (as loaded by pkg/config)
// and a profile name into a Config, starting from Quick or Full so the
// bounds the file does not set keep their defaults.
func FromConfig(s *config.Scenario, profile string) (Config, error) {
	if s == nil || s.Scale == nil {
		return Config{}, fmt.Errorf("services-scale: scenario has no scale section")
	}
	cfg := Quick
	if profile == "full" {
		cfg = Full
	}
	sc := s.Scale
	if len(sc.Services) > 0 {
		cfg.Sizes = append([]int(nil), sc.Services...)
	}
	if p, ok := s.Profiles[profile]; ok {
		if len(p.Services) > 0 {
			cfg.Sizes = append([]int(nil), p.Services...)
		}
		if p.DurationSeconds > 0 {
			cfg.ConnectWindow = time.Duration(p.DurationSeconds) * time.Second
		}
	} else if profile != "" {
		return Config{}, fmt.Errorf("services-scale: %s has no profile %q", s.File, profile)
	}
	if sc.EndpointsPerSvc > 0 {
		cfg.Endpoints = sc.EndpointsPerSvc
	}
	if len(sc.Proxies) > 0 {
		cfg.Proxies = append([]string(nil), sc.Proxies...)
	}
	if sc.Connects > 0 {
		cfg.Connects = sc.Connects
	}
	if sc.RateSeconds > 0 {
		cfg.RateWindow = time.Duration(sc.RateSeconds * float64(time.Second))
	}
	for _, p := range sc.Positions {
		if !slices.Contains(Placements, p) {
			return Config{}, fmt.Errorf("services-scale: position %q (known: %v)", p, Placements)
		}
	}
	return cfg, cfg.Validate()
}
