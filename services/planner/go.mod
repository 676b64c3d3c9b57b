module github.com/cutover-dev/cutover/services/planner

go 1.26.8
