#!/bin/sh
# Mirror the home folder onto the USB drive, keeping deleted files for 30 days.
set -eu
DEST=/media/$USER/SEAGATE/mirror
STAMP=$(date +%Y-%m-%d)
rsync -a --delete --backup --backup-dir="$DEST/../removed/$STAMP" \
      --exclude '.cache' --exclude 'Downloads' "$HOME/" "$DEST/"
find "$DEST/../removed" -maxdepth 1 -mtime +30 -exec rm -rf {} +
echo "mirrored $(du -sh "$DEST" | cut -f1)"
