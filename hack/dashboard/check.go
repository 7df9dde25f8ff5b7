package main

// The schema check: a dashboard against the dashboard types of the Grafana Foundation SDK
// (Apache-2.0; generated from Grafana's own schema). Strict decoding, so an unknown (misspelt)
// field, a wrong type or a missing required field is an error, then the SDK's Validate. Panel
// types and query data sources the SDK does not know would be decoded loosely, so they are
// refused too.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func check(file string) []string {
	raw, err := os.ReadFile(file)
	if err != nil {
		return []string{err.Error()}
	}
	var d dashboard.Dashboard
	// UnmarshalJSONStrict returns its error list even when it is empty (a non-nil error holding
	// no error): only the entries count.
	if errs := d.UnmarshalJSONStrict(raw); !empty(errs) {
		return []string{errs.Error()}
	}
	if err := d.Validate(); err != nil {
		return []string{err.Error()}
	}
	return knownVariants(raw)
}

func empty(err error) bool {
	var list cog.BuildErrors
	return err == nil || errors.As(err, &list) && len(list) == 0
}

// knownVariants lists panels whose type the SDK has no strict decoder for, and queries not for
// Prometheus: the SDK would accept any fields there.
func knownVariants(raw []byte) []string {
	var d struct {
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Datasource *struct {
				Type string `json:"type"`
			} `json:"datasource"`
			Targets []struct {
				RefID      string `json:"refId"`
				Datasource *struct {
					Type string `json:"type"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if _, ok := cog.ConfigForPanelcfgVariant(p.Type); !ok {
			problems = append(problems, fmt.Sprintf("panel %d: type %q is not a panel type the SDK knows", p.ID, p.Type))
		}
		for _, t := range p.Targets {
			ds := ""
			if t.Datasource != nil {
				ds = t.Datasource.Type
			} else if p.Datasource != nil {
				ds = p.Datasource.Type
			}
			// The SDK decodes Prometheus queries strictly; this dashboard has no other kind.
			if ds != "prometheus" {
				problems = append(problems, fmt.Sprintf("panel %d query %s: data source type %q, want prometheus", p.ID, t.RefID, ds))
			}
		}
	}
	return problems
}
