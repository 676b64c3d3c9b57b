module github.com/cutover-dev/cutover/services/lb-agent

go 1.26.8

replace github.com/cutover-dev/cutover/events => ../../events
