// Command natsbench measures flowrun's scale-out through NATS JetStream on this
// machine: a NATS server (embedded in this program), worker processes (`flowrun
// worker`), and a coordinator process (`flowrun run --nats URL`) for each
// benchmark, as docs/performance.md reports them.
//
//	go run ./bench/natsbench                  every benchmark, the median of 3 runs
//	go run ./bench/natsbench -only sleep      one of pass, batch, sleep, memory
//
// Each run's time is the run's (from the summary the coordinator prints), so
// process start and the connection to the server are not counted; peak RSS is the
// coordinator's (VmHWM, read from /proc while it runs: Linux only).
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flowrun/flowrun/natsexec"
)

func main() {
	workers := flag.Int("workers", 2, "worker processes")
	slots := flag.Int("slots", 64, "slots of each worker")
	reps := flag.Int("reps", 3, "runs of each benchmark; the median counts")
	only := flag.String("only", "", "run only this benchmark: pass, batch, sleep or memory")
	flag.Parse()
	if err := run(*workers, *slots, *reps, *only); err != nil {
		fmt.Fprintln(os.Stderr, "natsbench:", err)
		os.Exit(1)
	}
}

// bench is one benchmark: a workflow of bench/, its inputs, and what to report.
type bench struct {
	name, file string
	args       []string
	items      int
	inFlight   int           // --max-workers (default 1024)
	ideal      time.Duration // for the sleep benchmark: the wall time with no overhead
}

func run(workers, slots, reps int, only string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "natsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "flowrun")
	build := exec.Command("go", "build", "-o", bin, "./cmd/flowrun")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building flowrun: %w", err)
	}
	srv, url, err := natsexec.Embedded(filepath.Join(tmp, "nats"), "127.0.0.1:0", "")
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	conn, err := natsexec.Dial(context.Background(), url, "", "natsbench")
	if err != nil {
		return err
	}
	defer conn.Close()

	total := workers * slots
	benches := []bench{
		{name: "pass", file: "bench/nats-pass.yaml", args: []string{"-i", "n=20000"}, items: 20000},
		{name: "batch", file: "bench/nats-batch.yaml", args: []string{"-i", "n=500000"}, items: 500000},
		{name: "sleep", file: "bench/sleep.yaml", args: []string{"-i", "n=1000", "-i", "concurrency=1000", "-i", "pause=200ms"},
			items: 1000, ideal: time.Duration((1000+total-1)/total) * 200 * time.Millisecond},
	}
	// The coordinator's memory by calls in flight (--max-workers), and by items.
	for _, inFlight := range []int{256, 1024, 4096} {
		benches = append(benches, bench{name: "memory", file: "bench/nats-pass.yaml", args: []string{"-i", "n=100000"}, items: 100000, inFlight: inFlight})
	}
	benches = append(benches, bench{name: "memory", file: "bench/nats-pass.yaml", args: []string{"-i", "n=300000"}, items: 300000, inFlight: 1024})
	fmt.Printf("%d worker processes × %d slots, the NATS server in this process; median of %d\n\n", workers, slots, reps)
	fmt.Printf("%-8s %9s %10s %10s %14s %12s  %s\n", "bench", "items", "in flight", "time", "items/s", "coord. RSS", "")
	for _, b := range benches {
		if only != "" && b.name != only {
			continue
		}
		var all []result
		for range reps {
			res, err := once(bin, root, tmp, url, conn, workers, slots, b)
			if err != nil {
				return fmt.Errorf("%s: %w", b.name, err)
			}
			all = append(all, res)
		}
		slices.SortFunc(all, func(a, b result) int { return cmp.Compare(a.fan, b.fan) })
		best := all[len(all)/2]
		note := ""
		if b.ideal > 0 {
			note = fmt.Sprintf("ideal %s: +%.1f%%", b.ideal, 100*(float64(best.fan)/float64(b.ideal)-1))
		}
		fmt.Printf("%-8s %9d %10d %10s %14.0f %9.0f MB  %s\n", b.name, b.items, cmp.Or(b.inFlight, 1024), best.fan.Round(time.Millisecond),
			float64(b.items)/best.fan.Seconds(), float64(best.rss)/1024, note)
	}
	return nil
}

type result struct {
	fan time.Duration
	rss int64 // KB
}

// once starts the workers, waits for them, runs the coordinator, and stops them.
func once(bin, root, tmp, url string, conn *natsexec.Conn, workers, slots int, b bench) (result, error) {
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
			if os.Getenv("NATSBENCH_CPU") != "" {
				fmt.Fprintf(os.Stderr, "worker cpu %s\n", p.ProcessState.UserTime()+p.ProcessState.SystemTime())
			}
		}
	}()
	for i := range workers {
		w := exec.Command(bin, "worker", "--nats", url, "--slots", strconv.Itoa(slots), "--name", fmt.Sprintf("bench-%d", i))
		log, err := os.Create(filepath.Join(tmp, fmt.Sprintf("worker-%d.log", i)))
		if err != nil {
			return result{}, err
		}
		defer log.Close()
		w.Stderr = log
		if err := w.Start(); err != nil {
			return result{}, err
		}
		procs = append(procs, w)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		infos, err := natsexec.Workers(context.Background(), conn)
		if err != nil {
			return result{}, err
		}
		if len(infos) >= workers {
			break
		}
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("%d workers after 30s, want %d", len(infos), workers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	inFlight := cmp.Or(b.inFlight, 1024)
	args := append([]string{"run", b.file, "--nats", url, "--store", "none", "--max-workers", strconv.Itoa(inFlight), "--progress", "never"}, b.args...)
	coord := exec.Command(bin, args...)
	var stderr strings.Builder
	coord.Dir, coord.Stderr = root, &stderr
	if err := coord.Start(); err != nil {
		return result{}, err
	}
	// Its peak RSS, from /proc: the rusage of a child counts its parent's memory
	// from before the exec (this process, with the server in it, is the parent).
	peak, stop := make(chan int64, 1), make(chan struct{})
	go func() {
		var kb int64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			kb = max(kb, hwm(coord.Process.Pid))
			select {
			case <-t.C:
			case <-stop:
				peak <- kb
				return
			}
		}
	}()
	err := coord.Wait()
	close(stop)
	rss := <-peak
	if err != nil {
		return result{}, fmt.Errorf("the coordinator: %w\n%s", err, stderr.String())
	}
	if os.Getenv("NATSBENCH_CPU") != "" {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		fmt.Fprintf(os.Stderr, "coordinator cpu %s; server (cumulative) %s\n", coord.ProcessState.UserTime()+coord.ProcessState.SystemTime(),
			time.Duration(ru.Utime.Nano()+ru.Stime.Nano()))
	}
	// The run's summary says how long it ran (its one node, the map): "succeeded in 1.6s;".
	m := took.FindStringSubmatch(stderr.String())
	if m == nil {
		return result{}, fmt.Errorf("the coordinator's summary does not say how long the run took:\n%s", stderr.String())
	}
	fan, err := time.ParseDuration(m[1])
	if err != nil {
		return result{}, fmt.Errorf("the coordinator's summary: %v", err)
	}
	return result{fan: fan, rss: rss}, nil
}

// hwm is a process's peak RSS so far, in KB (VmHWM), or 0 when it is gone.
func hwm(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

var took = regexp.MustCompile(`succeeded in ([^;]+);`)

// repoRoot is the repository's root: the directory above bench/ with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/flowrun/flowrun") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("run it inside the flowrun repository (go run ./bench/natsbench)")
		}
	}
}
