package report

import (
	"bytes"
	"context"
	"flag"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/packetmortem/packetmortem/internal/testns"
)

var screenshot = flag.Bool("screenshot", false, "draw a golden report with headless chromium (CI does without it)")

// TestScreenshot renders a golden report as a page and has headless Chromium draw it, as a
// reader's browser would: the page must load and show text. It runs in CI, where chromium
// is installed, or with -screenshot; go test ./report -run Screenshot -screenshot -html DIR
// keeps the page and the PNG in DIR to look at. Serial: with -html it writes the page
// TestMarkdownRenders writes.
func TestScreenshot(t *testing.T) {
	if !*screenshot && !testns.CI() {
		t.Skip("-screenshot draws a report with headless chromium (CI does)")
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found: install it (apt-get install -y chromium) or leave out -screenshot: %v", err)
	}
	dir := *htmlDir
	if dir == "" {
		dir = t.TempDir()
	}
	md, err := os.ReadFile(filepath.Join("..", "testdata", "reports", "input_drop_rule_v4.md"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := renderGFM(md)
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, "input_drop_rule_v4.html")
	shot := filepath.Join(dir, "input_drop_rule_v4.png")
	if err := os.WriteFile(page, pageHTML("input_drop_rule_v4", body), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--screenshot="+shot, "--window-size=1200,2400", "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dx() != 1200 || b.Dy() != 2400 {
		t.Errorf("screenshot is %dx%d, want 1200x2400", b.Dx(), b.Dy())
	}
	// The title's dark text must be at the top of the page.
	dark := 0
	for y := 0; y < 80 && y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			if r < 0x4000 && g < 0x4000 && bl < 0x4000 {
				dark++
			}
		}
	}
	if dark < 500 {
		t.Errorf("the page's top shows no title (%d dark pixels): see %s", dark, shot)
	}
	t.Logf("screenshot: %s", shot)
}
