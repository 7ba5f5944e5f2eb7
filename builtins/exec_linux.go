package builtins

import "syscall"

// dieWithParent has the kernel kill the command when flowrun's thread that started
// it ends: with flowrun, even on SIGKILL.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
