package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/flowrun/flowrun/internal/llmstub"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"flowrun": main,
	})
}

// TestScripts runs the CLI scripts in testdata/script: each is a txtar archive of
// commands and the files they use (see the testscript package).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		UpdateScripts:       os.Getenv("UPDATE_SCRIPTS") == "1",
		Cmds:                map[string]func(ts *testscript.TestScript, neg bool, args []string){"llmstub": llmstubCmd},
		Setup: func(env *testscript.Env) error {
			// $WORKFLOWS: the example workflows, which scripts plan and run as they are.
			abs, err := filepath.Abs("../../workflows")
			env.Setenv("WORKFLOWS", abs)
			return err
		},
	})
}

var stubs sync.Map // *testscript.TestScript → *llmstub.Server

// llmstubCmd is a script command: `llmstub start [rpm=N tpm=N burst=S
// retry-after=S prompt=N completion=N latency=D]` starts an OpenAI-compatible stub
// on 127.0.0.1 for the script (FLOWRUN_LLM_BASE_URL points at it);
// `llmstub stats` prints what it saw: calls, limited, tokens; `llmstub near
// PLAN.json PCT` checks that the total tokens of a plan (flowrun plan --json) are
// within PCT percent of the tokens the stub counted.
func llmstubCmd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: llmstub start [options] | llmstub stats")
	}
	switch args[0] {
	case "start":
		opts, err := llmstub.ParseOptions(args[1:])
		ts.Check(err)
		srv, err := llmstub.Start(opts)
		ts.Check(err)
		stubs.Store(ts, srv)
		ts.Defer(func() {
			srv.Close()
			stubs.Delete(ts)
		})
		ts.Setenv("FLOWRUN_LLM_BASE_URL", srv.URL)
	case "stats":
		v, ok := stubs.Load(ts)
		if !ok {
			ts.Fatalf("llmstub stats: no stub started")
		}
		st := v.(*llmstub.Server).Stats()
		fmt.Fprintf(ts.Stdout(), "calls %d\nlimited %d\ntokens %d\n", st.Calls, st.Limited, st.Tokens)
	case "near":
		if len(args) != 3 {
			ts.Fatalf("usage: llmstub near PLAN.json PCT")
		}
		v, ok := stubs.Load(ts)
		if !ok {
			ts.Fatalf("llmstub near: no stub started")
		}
		var plan struct {
			Total struct {
				Tokens struct{ Input, Output int } `json:"tokens"`
			} `json:"total"`
		}
		ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[1])), &plan))
		pct, err := strconv.ParseFloat(args[2], 64)
		ts.Check(err)
		planned := plan.Total.Tokens.Input + plan.Total.Tokens.Output
		used := v.(*llmstub.Server).Stats().Tokens
		off := 100 * math.Abs(float64(planned-used)) / float64(max(used, 1))
		fmt.Fprintf(ts.Stdout(), "planned %d\nused %d\noff %.1f%%\n", planned, used, off)
		if (off > pct) != neg {
			ts.Fatalf("the plan's %d tokens are %.1f%% off the %d the stub counted (limit %s%%)", planned, off, used, args[2])
		}
	default:
		ts.Fatalf("llmstub: unknown subcommand %q", args[0])
	}
}
