module github.com/cutover-dev/cutover/services/auditor

go 1.26.8
