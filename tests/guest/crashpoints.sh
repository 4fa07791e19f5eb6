# Crash points recorded with dm-log-writes (the small instance of `make
# crashtest`; fixed seeds for the op streams and the choice of points):
# two writeboost devices of 2 MiB sharing a 12 MiB cache with migration on,
# 80+ ops each (512 B..256 KiB writes, 60% of them in a hot zone, 30%
# rewriting one of the last 8 writes; 4% FUA writes, 6% flushes, 5%
# discards); the log is replayed to up to 60 crash
# points (the FLUSH/FUA entries, the rest sampled); at each one the cache is
# resumed on a snapshot and every sector must read its last durable write
# or a later issued one (tests/crashtest, Documentation/testing.md).
. /wb/tests/lib.sh
. /wb/crashtest/lib.sh
CT_POINTS=60
CT_SEED=1
CT_OPS=80
CT_DEV_MB=2
CT_MIX=6:4:5:60:30
CT_LOG_MB=128
ct_main
