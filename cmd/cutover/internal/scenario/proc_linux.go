package scenario

import "syscall"

// childAttr puts a child in its own process group and kills it when the
// demo's thread that started it dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
