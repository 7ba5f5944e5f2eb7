package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/natsexec"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/store"
)

// natsFlags are run's and resume's flags for spreading calls over workers.
func natsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "nats", Usage: "send action calls to workers through the NATS server at `URL` (nats://host:4222), or embedded: start one in this process"},
		&cli.StringFlag{Name: "nats-listen", Value: natsexec.DefaultListen, Usage: "with --nats embedded, listen on `ADDR` (other machines' workers connect there)"},
		&cli.StringFlag{Name: "nats-creds", Usage: "a NATS credentials `FILE` (for servers with authentication)"},
		&cli.IntFlag{Name: "worker-slots", Value: -1, Usage: "also run calls in this process, `N` at a time (default: 16 with --nats embedded, else 0)"},
		&cli.DurationFlag{Name: "nats-wait", Value: 30 * time.Second, Usage: "fail a call that no live worker could take for this long"},
	}
}

// natsInFlight is how many calls a coordinator keeps in flight by default: the
// workers' slots bound how many run at once.
const natsInFlight = 1024

// scaledOut is a run's connection to workers: the executor, and what to stop.
type scaledOut struct {
	exec   *natsexec.Executor
	conn   *natsexec.Conn
	worker context.CancelFunc
	wdone  chan error
	server interface{ Shutdown() }
	url    string
	slots  int    // of the in-process worker
	tmp    string // the embedded server's store, without a run store
}

// connectNATS starts the embedded server when --nats says so and connects to the
// server, before a run is made or reopened, so that a server that cannot be had
// leaves no run behind. It returns nil without --nats.
func (e *env) connectNATS(c *cli.Context) (*scaledOut, error) {
	url := c.String("nats")
	if url == "" {
		return nil, nil
	}
	so := &scaledOut{url: url, slots: c.Int("worker-slots")}
	if url == "embedded" {
		dir := filepath.Join(c.String("store"), "nats")
		if storeOf(c) == nil {
			tmp, err := os.MkdirTemp("", "flowrun-nats-")
			if err != nil {
				return nil, err
			}
			dir, so.tmp = tmp, tmp
		}
		token, err := natsexec.Token(dir)
		if err != nil {
			so.stop(false)
			return nil, err
		}
		srv, u, err := natsexec.Embedded(dir, c.String("nats-listen"), token)
		if err != nil {
			so.stop(false)
			return nil, err
		}
		so.server, so.url = srv, u
		fmt.Fprintf(e.stderr, "flowrun: NATS server on %s; add workers with: flowrun worker --nats %s\n", u[strings.LastIndexByte(u, '@')+1:], u)
		if so.slots < 0 {
			so.slots = 16
		}
	}
	conn, err := natsexec.Dial(c.Context, so.url, c.String("nats-creds"), "flowrun coordinator "+natsexec.Hostname())
	if err != nil {
		so.stop(false)
		return nil, err
	}
	so.conn = conn
	return so, nil
}

// start connects the run to workers through the server: its executor, and an
// in-process worker when it has slots.
func (so *scaledOut) start(c *cli.Context, runID string, local action.Executor, ss *store.Session, log *lineHandler) error {
	ctx, conn, url, slots := c.Context, so.conn, so.url, so.slots
	epoch := 0
	if ss != nil {
		epoch = ss.Meta.Resumes
	}
	var err error
	so.exec, err = natsexec.NewExecutor(ctx, conn, natsexec.Options{RunID: runID, Epoch: epoch, Local: local,
		Name: natsexec.Hostname(), Logger: slogOf(log), NoWorkerWait: c.Duration("nats-wait")})
	if err != nil {
		return err
	}
	if slots > 0 {
		wconn, err := natsexec.Dial(ctx, url, c.String("nats-creds"), "flowrun worker (in the coordinator)")
		if err != nil {
			return err
		}
		wctx, cancel := context.WithCancel(context.Background())
		so.worker, so.wdone = cancel, make(chan error, 1)
		w := &natsexec.Worker{Conn: wconn, Exec: local, Name: natsexec.Hostname() + "-coordinator", Slots: slots,
			Version: versionString(), Log: slogOf(log)}
		go func() {
			so.wdone <- w.Run(wctx)
			wconn.Close()
		}()
	}
	return nil
}

// stop ends what connectNATS and start started (nothing when so is nil); a run that succeeded has its results purged.
func (so *scaledOut) stop(succeeded bool) {
	if so == nil {
		return
	}
	if so.exec != nil {
		if succeeded {
			so.exec.Purge(context.Background())
		}
		so.exec.Close()
	}
	if so.worker != nil {
		so.worker()
		<-so.wdone
	}
	if so.conn != nil {
		so.conn.Close()
	}
	if so.server != nil {
		so.server.Shutdown()
	}
	if so.tmp != "" {
		os.RemoveAll(so.tmp)
	}
}

func (e *env) workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run action calls sent through NATS by `flowrun run --nats`",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "nats", Required: true, Usage: "the NATS server's `URL` (nats://host:4222)"},
			&cli.StringFlag{Name: "nats-creds", Usage: "a NATS credentials `FILE`"},
			&cli.StringSliceFlag{Name: "pool", Usage: "take the calls of pool `NAME` (repeatable; default: default)"},
			&cli.IntFlag{Name: "slots", Value: 16, Usage: "run `N` calls at a time"},
			&cli.DurationFlag{Name: "ack-wait", Value: natsexec.DefaultAckWait, Usage: "how long a call this worker holds may go without a sign of life before another worker gets it (give every worker of a pool the same)"},
			&cli.StringFlag{Name: "name", Usage: "the worker's name (default: host-pid)"},
			&cli.StringFlag{Name: "dir", Value: ".", Usage: "the `DIR` relative paths of file actions resolve against (the workflows' directory, as this machine has it)"},
			&cli.BoolFlag{Name: "allow-exec", Usage: "allow the exec action to run programs"},
			allowPathFlag,
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usageError("worker takes no arguments (flowrun worker --nats URL)")
			}
			if c.Int("slots") < 1 {
				return usageError("--slots %d: expected at least 1", c.Int("slots"))
			}
			paths, err := allowedPaths(c)
			if err != nil {
				return err
			}
			dir, err := filepath.Abs(c.String("dir"))
			if err != nil {
				return usageError("--dir: %v", err)
			}
			name := c.String("name")
			if name == "" {
				name = natsexec.Hostname()
			}
			log := &lineHandler{w: e.stderr}
			conn, err := natsexec.Dial(c.Context, c.String("nats"), c.String("nats-creds"), "flowrun worker "+name)
			if err != nil {
				return exitWith(exitInvalid, err)
			}
			defer conn.Close()
			w := &natsexec.Worker{Conn: conn, Name: name, Pools: c.StringSlice("pool"), Slots: c.Int("slots"), Version: versionString(), AckWait: c.Duration("ack-wait"),
				Exec: e.reg.Local(action.Env{Dir: dir, AllowExec: c.Bool("allow-exec"), AllowPaths: paths, Grantor: "flowrun worker", Logger: slogOf(log)}),
				Log:  slogOf(log)}
			pools := w.Pools
			if len(pools) == 0 {
				pools = []string{natsexec.DefaultPool}
			}
			fmt.Fprintf(e.stderr, "flowrun: worker %s takes the calls of %s, %d at a time\n", name, strings.Join(pools, ", "), w.Slots)
			if err := w.Run(c.Context); err != nil {
				return exitWith(exitFailed, err)
			}
			fmt.Fprintf(e.stderr, "flowrun: worker %s stopped; the calls it held are finished\n", name)
			return nil
		},
	}
}

func (e *env) workersCommand() *cli.Command {
	return &cli.Command{
		Name:  "workers",
		Usage: "list the workers connected to a NATS server",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "nats", Required: true, Usage: "the NATS server's `URL` (nats://host:4222)"},
			&cli.StringFlag{Name: "nats-creds", Usage: "a NATS credentials `FILE`"},
			&cli.BoolFlag{Name: "json", Usage: "print the workers as JSON, for tools"},
		},
		Action: func(c *cli.Context) error {
			conn, err := natsexec.Dial(c.Context, c.String("nats"), c.String("nats-creds"), "flowrun workers")
			if err != nil {
				return exitWith(exitInvalid, err)
			}
			defer conn.Close()
			infos, err := natsexec.Workers(c.Context, conn)
			if err != nil {
				return exitWith(exitFailed, err)
			}
			if c.Bool("json") {
				if infos == nil {
					infos = []natsexec.Info{}
				}
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(infos)
			}
			if len(infos) == 0 {
				fmt.Fprintf(e.stderr, "no workers are connected to %s (start one with flowrun worker --nats %s)\n", c.String("nats"), c.String("nats"))
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPOOLS\tSLOTS\tBUSY\tVERSION\tLAST SEEN")
			for _, w := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s ago\n", w.Name, strings.Join(w.Pools, ","), w.Slots, w.Busy, w.Version,
					time.Since(w.Seen).Round(time.Second))
			}
			return tw.Flush()
		},
	}
}

// natsOptions fits a run's options to workers: more calls in flight unless
// --max-workers says otherwise.
func natsOptions(c *cli.Context, opts *runtime.Options) {
	if !c.IsSet("max-workers") {
		opts.MaxWorkers = natsInFlight
	}
}
