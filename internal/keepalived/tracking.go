package keepalived

import "fmt"

// What keepalived makes an instance track, from its own track_script and
// track_file blocks and from its sync group's: alloc_track_script()
// (keepalived/vrrp/vrrp_track.c) and vrrp_alloc_track_file()
// (keepalived/trackers/track_file.c) read each line when they meet it,
// vrrp_complete_instance() drops the weighted ones of a sync group's member
// or an address owner, and sync_group_tracking_init() (vrrp.c) adds the
// group's to each member.

// Tracker is a vrrp_script or a track_file that keepalived applies to an
// instance, with the weight and reverse it uses.
type Tracker struct {
	Ref     TrackRef   // the line that tracks it
	Group   *SyncGroup // the sync group of that line; nil for the instance's own
	Script  *Script    // the script tracked, or
	File    *TrackFile // the file
	Weight  int
	Reverse bool
	// Cleared says why keepalived set a written weight to 0, "" if it
	// did not.
	Cleared string
}

// Gate reports whether the tracker holds the instance in FAULT until its
// check passes, and only then: a script of weight 0 that is not reversed,
// a file of weight 0 reversed (only a non-zero value lets it up).
func (t Tracker) Gate() bool {
	if t.Script != nil {
		return t.Weight == 0 && !t.Reverse
	}
	return t.Weight == 0 && t.Reverse
}

// Inverted reports whether the tracker gates the wrong way round: a
// script of weight 0 reversed puts the instance in FAULT while the check
// passes and lets it up while it fails; a file of weight 0 not reversed
// does so for a non-zero value, and lets it up for a missing or empty one.
func (t Tracker) Inverted() bool {
	if t.Script != nil {
		return t.Weight == 0 && t.Reverse
	}
	return t.Weight == 0 && !t.Reverse
}

// Kind is "vrrp_script" or "track_file".
func (t Tracker) Kind() string {
	if t.Script != nil {
		return "vrrp_script"
	}
	return "track_file"
}

// noun is "script" or "file".
func (t Tracker) noun() string {
	if t.Script != nil {
		return "script"
	}
	return "file"
}

// Name is the script's or the file's name.
func (t Tracker) Name() string {
	if t.Script != nil {
		return t.Script.Name
	}
	return t.File.Name
}

// Ignored is a tracking line keepalived does not apply to an instance.
type Ignored struct {
	Ref   TrackRef
	Group *SyncGroup
	Kind  string // "track_script" or "track_file"
	// Why is what keepalived says, or why it says nothing.
	Why string
	// Harmless is true for a line that repeats another, or a weighted
	// check that could never have put the instance in FAULT.
	Harmless bool
	// Missing is true when nothing of that name was defined before the
	// line.
	Missing bool
}

// Tracking is what keepalived makes the instance track, in its order
// (the instance's lines, then its sync group's), and the lines it ignores.
func (m *Model) Tracking(in *Instance) ([]Tracker, []Ignored) {
	var ts []Tracker
	var ig []Ignored
	group := m.GroupOf(in)
	// Weighted checks of a sync group's member or of an address owner are
	// dropped (vrrp_complete_instance).
	dropWeights := ""
	switch {
	case group != nil && group.TrackingWeight == nil:
		dropWeights = "SYNC group"
	case in.BasePriority() == 255:
		dropWeights = "address_owner"
	}
	// What the instance's own lines tracked when keepalived read them
	// (weighted ones included, dropped only later), and what its group's
	// did: a line that repeats one of them is a duplicate.
	own, ofGroup := map[any]bool{}, map[any]bool{}
	for _, ref := range in.TrackScripts {
		t, why := m.trackScript(in.Name, in.Seq, ref, own, nil)
		switch {
		case why != nil:
			ig = append(ig, *why)
		case t.Weight != 0 && dropWeights != "":
			own[t.Script] = true
			ig = append(ig, Ignored{Ref: ref, Kind: "track_script", Harmless: true,
				Why: fmt.Sprintf("(%s) ignoring tracked script %s with weights due to %s", in.Name, t.Name(), dropWeights)})
		default:
			own[t.Script] = true
			ts = append(ts, t)
		}
	}
	for _, ref := range in.TrackFiles {
		t, why := m.trackFile(in.Name, in.Seq, ref, own, nil)
		if why != nil {
			ig = append(ig, *why)
			continue
		}
		own[t.File] = true
		switch {
		case t.Weight == 1 && dropWeights != "":
			t.Weight = 0
			t.Cleared = fmt.Sprintf("(%s) ignoring weight from tracked file %s due to %s. specify weight 0", in.Name, t.Name(), dropWeights)
			ts = append(ts, t)
		case t.Weight != 0 && dropWeights != "":
			ig = append(ig, Ignored{Ref: ref, Kind: "track_file", Harmless: true,
				Why: fmt.Sprintf("(%s) ignoring tracked file %s with weight %d due to %s", in.Name, t.Name(), t.Weight, dropWeights)})
		default:
			ts = append(ts, t)
		}
	}
	if group == nil {
		return ts, ig
	}
	owner := false
	for _, member := range m.Members(group) {
		owner = owner || member.BasePriority() == 255
	}
	// Where the instance's own trackers are, by what they track.
	at := map[any]int{}
	for i, t := range ts {
		if t.Script != nil {
			at[t.Script] = i
		} else {
			at[t.File] = i
		}
	}
	add := func(t Tracker, why *Ignored) {
		if why != nil {
			ig = append(ig, *why)
			return
		}
		var key any = t.File
		if t.Script != nil {
			key = t.Script
		}
		ofGroup[key] = true
		t.Group = group
		if t.Weight != 0 && owner {
			t.Weight, t.Cleared = 0, fmt.Sprintf("(%s) Cannot have weighted track %s '%s' with member having priority 255 - clearing weight", group.Name, t.noun(), t.Name())
		}
		// The same check on the instance itself: the group's weight
		// wins unless the instance's is 0 (add_vrrp_to_track_script).
		if i, ok := at[key]; ok {
			if ts[i].Weight != 0 {
				ts[i].Weight, ts[i].Reverse, ts[i].Group, ts[i].Ref = t.Weight, t.Reverse, group, t.Ref
			}
			ig = append(ig, Ignored{Ref: t.Ref, Group: group, Kind: "track_" + t.noun(), Harmless: true,
				Why: fmt.Sprintf("(%s) track_%s %s is configured on VRRP instance and sync group. Remove vrrp instance config", in.Name, t.noun(), t.Name())})
			return
		}
		ts = append(ts, t)
	}
	for _, ref := range group.TrackScripts {
		add(m.trackScript(group.Name, group.Seq, ref, ofGroup, group))
	}
	for _, ref := range group.TrackFiles {
		add(m.trackFile(group.Name, group.Seq, ref, ofGroup, group))
	}
	return ts, ig
}

// trackScript reads one track_script line of the block named owner (an
// instance or a sync group) at seq, as alloc_track_script does; seen are
// the scripts the same block tracks already.
func (m *Model) trackScript(owner string, seq int, ref TrackRef, seen map[any]bool, g *SyncGroup) (Tracker, *Ignored) {
	ignored := func(why string, harmless, missing bool) (Tracker, *Ignored) {
		return Tracker{}, &Ignored{Ref: ref, Group: g, Kind: "track_script", Why: why, Harmless: harmless, Missing: missing}
	}
	var sc *Script
	var removed, later *Script
	for _, s := range m.idx().scripts[ref.Name] {
		switch {
		case s.Seq > seq:
			if later == nil {
				later = s
			}
		case s.Script == nil:
			removed = s // "No script set for vrrp_script X - removing"
		case sc == nil:
			sc = s
		}
	}
	switch {
	case sc == nil && removed != nil:
		return ignored(fmt.Sprintf("(%s) track script %s not found, ignoring...: vrrp_script %s has no script line, and keepalived removed it (\"No script set\")", owner, ref.Name, ref.Name), false, true)
	case sc == nil && later != nil:
		return ignored(fmt.Sprintf("(%s) track script %s not found, ignoring...: vrrp_script %s comes after this line (%s), and keepalived looks it up where it reads the line", owner, ref.Name, ref.Name, later.Stmt.Pos), false, true)
	case sc == nil:
		return ignored(fmt.Sprintf("(%s) track script %s not found, ignoring...", owner, ref.Name), false, true)
	}
	if seen[sc] {
		return ignored(fmt.Sprintf("(%s) duplicate track_script %s - ignoring", owner, ref.Name), true, false)
	}
	switch {
	case len(ref.Stmt.Words) >= 2 && ref.Stmt.Words[1] != "weight":
		return ignored(fmt.Sprintf("(%s) unknown track script option %s - ignoring", owner, ref.Stmt.Words[1]), false, false)
	case len(ref.Stmt.Words) == 2:
		return ignored(fmt.Sprintf("(%s) weight without value specified for track script %s - ignoring", owner, ref.Name), false, false)
	}
	w, rev := sc.EffectiveReverse(ref)
	return Tracker{Ref: ref, Script: sc, Weight: w, Reverse: rev}, nil
}

// trackFile reads one track_file line as vrrp_alloc_track_file does.
func (m *Model) trackFile(owner string, seq int, ref TrackRef, seen map[any]bool, g *SyncGroup) (Tracker, *Ignored) {
	ignored := func(why string, harmless, missing bool) (Tracker, *Ignored) {
		return Tracker{}, &Ignored{Ref: ref, Group: g, Kind: "track_file", Why: why, Harmless: harmless, Missing: missing}
	}
	var tf, removed, later *TrackFile
	for _, t := range m.idx().files[ref.Name] {
		switch {
		case t.Seq > seq:
			if later == nil {
				later = t
			}
		case t.File == nil:
			removed = t // "No file set for track_file X - ignoring"
		case tf == nil:
			tf = t
		}
	}
	switch {
	case tf == nil && removed != nil:
		return ignored(fmt.Sprintf("(%s) track file %s not found, ignoring...: track_file %s has no file line, and keepalived ignored it (\"No file set\")", owner, ref.Name, ref.Name), false, true)
	case tf == nil && later != nil:
		return ignored(fmt.Sprintf("(%s) track file %s not found, ignoring...: track_file %s comes after this line (%s), and keepalived looks it up where it reads the line", owner, ref.Name, ref.Name, later.Stmt.Pos), false, true)
	case tf == nil:
		return ignored(fmt.Sprintf("(%s) track file %s not found, ignoring...", owner, ref.Name), false, true)
	}
	if seen[tf] {
		return ignored(fmt.Sprintf("(%s) duplicate track_file %s - ignoring", owner, ref.Name), true, false)
	}
	ws := ref.Stmt.Words
	switch {
	case len(ws) >= 2 && ws[1] != "weight":
		return ignored(fmt.Sprintf("(%s) unknown track file option %s - ignoring", owner, ws[1]), false, false)
	case len(ws) == 2:
		return ignored(fmt.Sprintf("(%s) weight without value specified for track file %s - ignoring", owner, ref.Name), false, false)
	case len(ws) >= 4 && ws[3] != "reverse" && ws[3] != "noreverse":
		return ignored(fmt.Sprintf("(%s) unknown track file %s weight option %s - ignoring", owner, ref.Name, ws[3]), false, false)
	}
	w, rev := tf.Effective(ref)
	return Tracker{Ref: ref, File: tf, Weight: w, Reverse: rev}, nil
}

// GroupOf is the sync group the instance belongs to: the first whose
// group block names it (an instance is in one group at most), nil if none.
func (m *Model) GroupOf(in *Instance) *SyncGroup {
	return m.idx().groupOf[in.Name]
}

// Members are the instances the sync group holds (names of no instance,
// or of one an earlier group holds, are ignored).
func (m *Model) Members(g *SyncGroup) []*Instance {
	return m.idx().members[g]
}
