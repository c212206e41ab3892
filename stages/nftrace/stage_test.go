package nftrace

import (
	"testing"

	"github.com/packetmortem/packetmortem/stages/stage"
	"github.com/packetmortem/packetmortem/stages/stage/stagetest"
)

// The stage keeps the lifecycle's promises.
func TestStageConformance(t *testing.T) {
	stagetest.Conformance(t, "nc", func(e stagetest.Env) {
		// A base chain: without one the stage has nothing to trace and installs nothing.
		nftIn(t, e.Pair.Server, "add", "table", "inet", "user")
		nftIn(t, e.Pair.Server, "add", "chain", "inet", "user", "input", "{ type filter hook input priority 0; }")
	}, func(e stagetest.Env) stage.Stage { return NewStage(Config{Flow: e.Flow, Netns: e.Handle}) })
}
