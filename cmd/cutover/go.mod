module github.com/cutover-dev/cutover/cmd/cutover

go 1.26.8

replace (
	github.com/cutover-dev/cutover/events => ../../events
	github.com/cutover-dev/cutover/services/auditor => ../../services/auditor
	github.com/cutover-dev/cutover/services/migrator => ../../services/migrator
	github.com/cutover-dev/cutover/services/node-updater => ../../services/node-updater
	github.com/cutover-dev/cutover/services/planner => ../../services/planner
)
