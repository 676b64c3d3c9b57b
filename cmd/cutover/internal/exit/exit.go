// Package exit carries the CLI's exit codes from a command, or from the
// packages a command calls, to main: a command returns one of these errors
// and main's execute turns it into the process exit code.
package exit

import "fmt"

// Error ends the process with Code and prints nothing more: the command
// already said why.
type Error struct{ Code int }

func (e Error) Error() string { return fmt.Sprintf("exit %d", e.Code) }

// UsageError is a mistake in the command line: main prints it with a
// pointer to the command's help and exits 2.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef is a UsageError with a formatted message.
func Usagef(format string, a ...any) error {
	return UsageError{fmt.Errorf(format, a...)}
}
