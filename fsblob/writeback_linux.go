package fsblob

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// writeback has the kernel write a staging file out as it is written,
// writebackStep bytes at a time, rather than all of it in the fsync at
// the end (see blobWriter): each step's writeback is started once the
// step is written; the step before it is waited for and then dropped
// from the page cache. The file's data is then in the page cache only
// a few steps at a time, and those pages are reused by the steps that
// follow, whatever the blob's size.
type writeback struct {
	f       *os.File
	prev    int64 // where the step being written back, not yet waited for, starts
	started int64 // bytes whose writeback has been started
	off     bool  // sync_file_range(2) is not supported here
}

func newWriteback(f *os.File) *writeback { return &writeback{f: f} }

// wrote is told that the first end bytes of the file are written. An
// error of the writeback is returned: the kernel reports it once, so the
// fsync at the end might not see it again.
func (wb *writeback) wrote(end int64) error {
	if wb.off || end-wb.started < writebackStep {
		return nil
	}
	fd := int(wb.f.Fd())
	if err := unix.SyncFileRange(fd, wb.started, end-wb.started, unix.SYNC_FILE_RANGE_WRITE); err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			wb.off = true // the fsync at the end writes everything
			return nil
		}
		return fmt.Errorf("write blob out: %w", err)
	}
	if wb.started > wb.prev {
		n := wb.started - wb.prev
		err := unix.SyncFileRange(fd, wb.prev, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|
			unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		if err != nil {
			return fmt.Errorf("write blob out: %w", err)
		}
		// Only advice: pages it leaves are dropped later as any are.
		_ = unix.Fadvise(fd, wb.prev, n, unix.FADV_DONTNEED)
	}
	wb.prev, wb.started = wb.started, end
	return nil
}
