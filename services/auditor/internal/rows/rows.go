// Package rows reads the auditor's query results the same way for every SQL
// store (sqlite/, postgres/): both select the same columns in the same order
// and keep times as Unix nanoseconds.
package rows

import (
	"database/sql"
	"time"

	"github.com/cutover-dev/cutover/services/auditor"
)

// Records scans rows of (id, type, source, subject, upgradeid, nodeid,
// causationid, time, stored_at, event, seq) and closes them.
func Records(rs *sql.Rows) ([]auditor.Record, error) {
	defer rs.Close()
	var out []auditor.Record
	for rs.Next() {
		var r auditor.Record
		var t, stored, seq int64
		var raw string
		if err := rs.Scan(&r.ID, &r.Type, &r.Source, &r.Subject, &r.UpgradeID, &r.NodeID, &r.CausationID, &t, &stored, &raw, &seq); err != nil {
			return nil, err
		}
		r.Sequence = uint64(seq)
		r.Time, r.StoredAt, r.Event = FromNanos(t), FromNanos(stored), []byte(raw)
		out = append(out, r)
	}
	return out, rs.Err()
}

// Summaries scans rows of (upgrade id, event count, first time, last time,
// release, newest lifecycle type, its data) and closes them.
func Summaries(rs *sql.Rows) ([]auditor.UpgradeSummary, error) {
	defer rs.Close()
	var out []auditor.UpgradeSummary
	for rs.Next() {
		var u auditor.UpgradeSummary
		var first, last int64
		var release, typ, data sql.NullString
		if err := rs.Scan(&u.ID, &u.Events, &first, &last, &release, &typ, &data); err != nil {
			return nil, err
		}
		u.FirstTime, u.LastTime = FromNanos(first), FromNanos(last)
		u.Release = release.String
		u.State = auditor.StateOf(typ.String, []byte(data.String))
		out = append(out, u)
	}
	return out, rs.Err()
}

// FromNanos turns stored Unix nanoseconds back into a UTC time.
func FromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }
