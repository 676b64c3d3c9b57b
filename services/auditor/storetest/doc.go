// Package storetest is the conformance suite every auditor history store
// passes (watermill's habit): the sqlite and postgres packages run it from
// their tests with an opener of their own, so both stores keep the same
// behaviour — an id stored once, events ordered by time then id, summaries
// with the same release and state.
package storetest
