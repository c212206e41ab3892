package arrival

import (
	"testing"

	"github.com/packetmortem/packetmortem/stages/stage"
	"github.com/packetmortem/packetmortem/stages/stage/stagetest"
)

// The stage keeps the lifecycle's promises.
func TestStageConformance(t *testing.T) {
	stagetest.Conformance(t, "ac", nil, func(e stagetest.Env) stage.Stage {
		return NewStage(Config{Flow: e.Flow, Netns: e.Handle, Method: testMethod})
	})
}
