package main

import (
	"os/exec"
	"syscall"
)

// killWithParent has the kernel kill cmd's process if this one dies
// without stopping it (killed itself, say).
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
