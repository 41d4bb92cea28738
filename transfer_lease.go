package cloudimage

import (
	"context"
	"fmt"
	"time"
)

// A transfer is an upload, a stage or an import while its data moves.
// The process running one holds it, so that nothing else starts another
// transfer of the image, and RecoverUploads leaves it alone. With
// WithTransferLeases the hold is also a lease in the database, renewed
// while the transfer runs, so that the same holds across replicas: a
// replica repairs only the transfers that nobody runs any more.

// DefaultTransferLeaseTTL is how long a transfer's lease lasts unless
// configured otherwise; it is renewed every third of that.
const DefaultTransferLeaseTTL = 30 * time.Second

// TransferLeasePrefix starts the name of an image's transfer lease,
// which ends with the image's ID.
const TransferLeasePrefix = "transfer:"

// WithTransferLeases makes every transfer of image data take a lease in
// leases, as holder, for ttl (0: DefaultTransferLeaseTTL), renewed while
// it runs and released at its end. Every replica that shares a database
// must have it, each with its own holder; without it, a service assumes
// that it is alone on its database.
//
// holder names the replica: no two that run at once may share it. A
// replica that keeps its holder across a restart takes over at once
// the transfers its previous run left behind, which would otherwise wait
// for their leases to run out.
func WithTransferLeases(leases LeaseStore, holder string, ttl time.Duration) ServiceOption {
	return func(s *ImageService) {
		if ttl <= 0 {
			ttl = DefaultTransferLeaseTTL
		}
		s.leases, s.holder, s.leaseTTL = leases, holder, ttl
	}
}

// transfer is this process's hold on an image's transfer.
type transfer struct {
	s    *ImageService
	id   string
	lost context.Context // done, with errTransferLost as its cause, once the lease is lost
	lose context.CancelCauseFunc
	stop chan struct{} // ends the renewal; nil without a lease
	done chan struct{} // closed when the renewal has ended
}

// errTransferLost is the cause of a transfer stopped because its lease
// could not be renewed in time, or another replica took it over.
var errTransferLost = Errorf(ECONFLICT, "This server lost its hold on the transfer of the image's "+
	"data (it stalled, or lost its database): retry it.")

// errTransferBusy refuses a transfer of an image whose data is already
// moving, here or on another replica.
func errTransferBusy(id string) error {
	return Errorf(ECONFLICT, "Data of image %s is already being transferred.", id)
}

// tryTransfer takes the transfer of image id and reports whether it
// did: false when a transfer of it runs in this process or, by its
// lease, on another replica. A transfer taken must be ended with end.
func (s *ImageService) tryTransfer(ctx context.Context, id string) (*transfer, bool, error) {
	s.mu.Lock()
	if _, busy := s.transfers[id]; busy {
		s.mu.Unlock()
		return nil, false, nil
	}
	if s.transfers == nil {
		s.transfers = map[string]struct{}{}
	}
	s.transfers[id] = struct{}{}
	s.mu.Unlock()

	t := &transfer{s: s, id: id}
	t.lost, t.lose = context.WithCancelCause(context.Background())
	if s.leases == nil {
		return t, true, nil
	}
	start := time.Now()
	ok, err := s.leases.AcquireLease(ctx, TransferLeasePrefix+id, s.holder, s.leaseTTL)
	if err != nil || !ok {
		s.forgetTransfer(id)
		if err != nil {
			return nil, false, fmt.Errorf("take the transfer lease of image %s: %w", id, err)
		}
		return nil, false, nil
	}
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	go t.renew(start)
	return t, true, nil
}

// beginTransfer is tryTransfer for a request: a transfer already running
// is ECONFLICT.
func (s *ImageService) beginTransfer(ctx context.Context, id string) (*transfer, error) {
	t, ok, err := s.tryTransfer(ctx, id)
	if err == nil && !ok {
		err = errTransferBusy(id)
	}
	return t, err
}

func (s *ImageService) forgetTransfer(id string) {
	s.mu.Lock()
	delete(s.transfers, id)
	s.mu.Unlock()
}

// renew renews the lease every third of its time until end. A store
// that fails is retried at the next turn, but not when the lease would
// run out before it: the transfer stops then, before another replica
// can take the image over, as it does when another replica holds the
// lease.
func (t *transfer) renew(renewed time.Time) {
	defer close(t.done)
	every := max(t.s.leaseTTL/3, time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		start := time.Now()
		ok, err := t.s.leases.AcquireLease(ctx, TransferLeasePrefix+t.id, t.s.holder, t.s.leaseTTL)
		cancel()
		switch {
		case err == nil && ok:
			renewed = start
			continue
		case err != nil && time.Since(renewed)+every < t.s.leaseTTL:
			t.s.logger.Warn("renew transfer lease", "image", t.id, "err", err)
			continue
		case err != nil:
			t.s.logger.Error("transfer lease not renewed in time; transfer stopped", "image", t.id, "err", err)
		default:
			t.s.logger.Error("transfer lease taken over by another replica; transfer stopped", "image", t.id)
		}
		t.lose(errTransferLost)
		return
	}
}

// end releases the transfer, and its lease.
func (t *transfer) end() {
	if t.stop != nil {
		close(t.stop)
		<-t.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := t.s.leases.ReleaseLease(ctx, TransferLeasePrefix+t.id, t.s.holder); err != nil {
			// It runs out by itself.
			t.s.logger.Warn("release transfer lease", "image", t.id, "err", err)
		}
		cancel()
	}
	t.lose(nil)
	t.s.forgetTransfer(t.id)
}

// confirm renews the lease now, before a transfer commits its result,
// and is errTransferLost if it is lost or cannot be renewed.
func (t *transfer) confirm(ctx context.Context) error {
	if err := t.lostErr(); err != nil || t.stop == nil {
		return err
	}
	ok, err := t.s.leases.AcquireLease(ctx, TransferLeasePrefix+t.id, t.s.holder, t.s.leaseTTL)
	if err != nil || !ok {
		t.s.logger.Error("transfer lease lost before its commit; transfer stopped", "image", t.id, "err", err)
		t.lose(errTransferLost)
		return errTransferLost
	}
	return nil
}

// bind returns a context derived from ctx that is also cancelled, with
// errTransferLost as its cause, if the transfer's lease is lost.
func (t *transfer) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(t.lost, func() { cancel(context.Cause(t.lost)) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// lostErr returns errTransferLost once the lease is lost, and nil before.
// A transfer that lost its lease must leave the image alone: the replica
// that took the lease over has repaired it, and may be transferring it
// anew.
func (t *transfer) lostErr() error {
	if context.Cause(t.lost) == errTransferLost {
		return errTransferLost
	}
	return nil
}
