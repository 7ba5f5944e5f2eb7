//go:build !unix

package builtins

import "os/exec"

// killGroup kills only the command itself where process groups are not available.
func killGroup(cmd *exec.Cmd) {
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return cmd.Process.Kill()
	}
}
