//go:build unix

package builtins

import (
	"os/exec"
	"syscall"
)

// killGroup starts the command in a process group of its own and makes cmd.Cancel
// kill the whole group, so programs the command started die with it; on Linux the
// command also dies with flowrun, however flowrun ends.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(cmd.SysProcAttr)
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
