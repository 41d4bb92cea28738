//go:build !unix

package fsblob

import "os"

// lockFile does nothing where advisory locks are not available.
func lockFile(*os.File) error { return nil }

// clearStaging removes every staging file: without locks it cannot tell
// a live Put of another process from a dead one, so only one process may
// use a directory at a time.
func clearStaging(dir string) error { return os.RemoveAll(dir) }
