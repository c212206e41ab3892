package testns

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// Helpers for the probes of the kernel-side stages (kdrop, path), which share a lifetime:
// Start(ctx, Config) (*Probe, error), an idempotent Close, a reader that counts Events.

// CloseOnCleanup closes c when the test ends, twice, failing the test unless both calls
// return nil: Close must be idempotent.
func CloseOnCleanup(t testing.TB, c io.Closer) {
	t.Helper()
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
	})
}

// WaitEvents waits until p's reader has read n events, so Events is tested too.
func WaitEvents(t testing.TB, p interface{ Events() int }, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for p.Events() < n {
		if time.Now().After(deadline) {
			t.Fatalf("Events() = %d after 2s, want %d", p.Events(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CheckStartEdges checks what every probe's Start promises beyond the kernel: a cancelled
// context ends it with context.Canceled, the zero config (no flow) is refused, and a nil
// probe closes without error, twice. cfg is a valid config.
func CheckStartEdges[C any, P io.Closer](t testing.TB, start func(context.Context, C) (P, error), cfg C) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := start(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled start: %v", err)
	}
	var zero C
	if _, err := start(context.Background(), zero); err == nil {
		t.Error("empty flow accepted")
	}
	var none P
	if err := none.Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
	if err := none.Close(); err != nil {
		t.Errorf("second nil Close: %v", err)
	}
}
