// Package report is the verdict report: a JSON model, the source of truth, and a Markdown
// rendering of that same model for a ticket.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/packetmortem/packetmortem/stages/evidence"
)

// SchemaVersion changes whenever a JSON name changes meaning or goes away, or the report
// gains a part that scripts may rely on, so that a script can tell what it may find. 2
// added verdict.journey; every name of 1 kept its meaning.
const SchemaVersion = 2

// Report is one run's report. Its JSON names are a contract for scripts.
type Report struct {
	SchemaVersion int           `json:"schema_version"`
	Tool          Tool          `json:"tool"`
	Verdict       Verdict       `json:"verdict"`
	Flow          evidence.Flow `json:"flow"`
	Host          Host          `json:"host"`
	Run           Run           `json:"run"`
	Stages        Stages        `json:"stages"`
}

// Tool names the program that wrote the report.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Host is where diagnose ran.
type Host struct {
	Hostname string         `json:"hostname"`
	Kernel   string         `json:"kernel"`
	Netns    evidence.Netns `json:"netns"`
}

// Run is how diagnose ran.
type Run struct {
	Args         []string `json:"args"`
	Reproduction []string `json:"reproduction,omitempty"`
	// ReproductionExit is the command's exit status; nil when it did not run or was killed.
	ReproductionExit *int      `json:"reproduction_exit,omitempty"`
	Started          time.Time `json:"started"`
	DurationMS       int64     `json:"duration_ms"`
	// ArmedMS is the time from start until every stage was armed.
	ArmedMS int64 `json:"armed_ms"`
	// StoppedBy says what ended the capture: command, timeout, count, signal.
	StoppedBy string `json:"stopped_by"`
	// Pcapng is the capture with each packet's fate as its comment, when -o wrote one.
	Pcapng string `json:"pcapng,omitempty"`
	// Installed lists the temporary kernel objects and whether each was removed.
	Installed []evidence.Installed `json:"installed"`
	Notes     []string             `json:"notes,omitempty"`
}

// Stages holds each stage's evidence; nil when a stage did not run.
type Stages struct {
	Arrival    *evidence.Arrival    `json:"arrival"`
	Firewall   *evidence.Firewall   `json:"firewall"`
	KernelDrop *evidence.KernelDrop `json:"kernel_drop"`
	Path       *evidence.Path       `json:"path,omitempty"`
	Host       *evidence.HostState  `json:"host_state,omitempty"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// Read decodes a JSON report.
func Read(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("read JSON report: %w", err)
	}
	return &r, nil
}

// Evidence rebuilds the evidence the report was judged from, so a recorded report can be
// judged again by a newer verdict.
func (r *Report) Evidence() *evidence.Evidence {
	return &evidence.Evidence{
		Flow:     r.Flow,
		Netns:    r.Host.Netns,
		Arrival:  r.Stages.Arrival,
		Firewall: r.Stages.Firewall,
		Kernel:   r.Stages.KernelDrop,
		Path:     r.Stages.Path,
		Host:     r.Stages.Host,
	}
}
