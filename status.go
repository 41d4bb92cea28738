package cloudimage

// Status is the lifecycle state of an image. The values are Glance's and
// those of the NHN Cloud v1.0 list.
type Status string

// The seven image statuses, plus the two that Glance's interoperable import
// passes through.
const (
	StatusQueued        Status = "queued"         // created, no data yet
	StatusSaving        Status = "saving"         // data is being uploaded
	StatusUploading     Status = "uploading"      // data is being staged for import
	StatusImporting     Status = "importing"      // staged data is being imported
	StatusActive        Status = "active"         // data present and usable
	StatusKilled        Status = "killed"         // an upload failed for good
	StatusDeleted       Status = "deleted"        // gone; the record is kept
	StatusPendingDelete Status = "pending_delete" // deleted, data not yet scrubbed
	StatusDeactivated   Status = "deactivated"    // data may not be used
)

// transitions lists, for each status, the statuses an image may move to.
// It is Glance's table (glance/domain valid_state_targets); every status
// change in the service goes through Image.SetStatus, which consults it.
var transitions = map[Status][]Status{
	StatusQueued:        {StatusSaving, StatusUploading, StatusImporting, StatusActive, StatusDeleted},
	StatusSaving:        {StatusActive, StatusKilled, StatusDeleted, StatusQueued},
	StatusUploading:     {StatusImporting, StatusQueued, StatusDeleted},
	StatusImporting:     {StatusActive, StatusDeleted, StatusQueued},
	StatusActive:        {StatusPendingDelete, StatusDeleted, StatusDeactivated},
	StatusKilled:        {StatusDeleted},
	StatusPendingDelete: {StatusDeleted, StatusActive},
	StatusDeactivated:   {StatusActive, StatusDeleted},
	StatusDeleted:       nil,
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// CanTransition reports whether an image in status s may move to status to.
func (s Status) CanTransition(to Status) bool {
	for _, t := range transitions[s] {
		if t == to {
			return true
		}
	}
	return false
}
