// testsum reads `go test -json` on stdin and prints what a person needs from a run: each
// package's result as go test prints it, the whole output of every test that failed, and,
// at the end, every test that skipped with its reason. go test hides skips in a passing
// package; a skip must never hide a test that did not run.
//
//	go test -json ./... | go run .ci/testsum.go
//
// It exits 1 when a test, a package or a build failed, or when the input ends early.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
	Elapsed    float64
}

type key struct{ pkg, test string }

func main() {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	logs := map[key][]string{}
	var skips []string
	failed, sawEnd := false, false
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	for in.Scan() {
		line := in.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event: go test's own errors (a package that does not build).
			fmt.Fprintln(out, string(line))
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			fmt.Fprint(out, e.Output)
		case "build-fail":
			failed = true
		case "output":
			if e.Test == "" {
				// The package's own lines, TestMain's messages; its result is printed from its
				// end event (test2json, unlike go test, prints no "ok" line).
				if !packageResult(e.Output) {
					fmt.Fprint(out, e.Output)
				}
				continue
			}
			logs[k] = append(logs[k], e.Output)
		case "fail":
			failed = true
			if e.Test != "" {
				fmt.Fprintf(out, "--- FAIL: %s (%s)\n%s", e.Test, e.Package, strings.Join(logs[k], ""))
			}
		case "skip":
			if e.Test != "" {
				skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, skipReason(logs[k])))
			}
		}
		switch {
		case e.Action != "pass" && e.Action != "fail" && e.Action != "skip":
			continue
		case e.Test != "":
			delete(logs, k)
		case e.Action == "skip":
			sawEnd = true
			fmt.Fprintf(out, "?   \t%s\t[no test files]\n", e.Package)
		default:
			sawEnd = true
			result := map[string]string{"pass": "ok  ", "fail": "FAIL"}[e.Action]
			fmt.Fprintf(out, "%s\t%s\t%.3fs\n", result, e.Package, e.Elapsed)
			out.Flush() // each package's result as it comes: the run is long
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(out, "testsum: reading go test's output: %v\n", err)
		failed = true
	}
	if !sawEnd {
		fmt.Fprintln(out, "testsum: no package finished: go test stopped before any result")
		failed = true
	}
	if len(skips) > 0 {
		sort.Strings(skips)
		fmt.Fprintf(out, "\n%d test(s) skipped:\n", len(skips))
		for _, s := range skips {
			fmt.Fprintln(out, "  "+s)
		}
	}
	if failed {
		out.Flush()
		os.Exit(1)
	}
}

// packageResult tells go test's own line for a package's end ("ok  \tpkg\t0.1s", "FAIL",
// "?   \tpkg\t[no test files]"), which the end event stands for.
func packageResult(line string) bool {
	s := strings.TrimSpace(line)
	return s == "PASS" || s == "FAIL" || strings.HasPrefix(s, "=== ") || strings.HasPrefix(s, "ok  \t") ||
		strings.HasPrefix(s, "FAIL\t") || strings.HasPrefix(s, "?   \t")
}

// skipReason is the message t.Skip printed: the last line of the test's output that is not
// go test's own.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		s := strings.TrimSpace(lines[i])
		if s == "" || strings.HasPrefix(s, "=== ") || strings.HasPrefix(s, "--- ") {
			continue
		}
		return s
	}
	return "(no reason given)"
}
