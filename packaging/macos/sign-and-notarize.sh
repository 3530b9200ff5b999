#!/usr/bin/env bash
# Sign, notarize and staple localsearch.app, then make, sign and notarize the .dmg. Runs on
# a Mac that holds a "Developer ID Application" certificate in its keychain and a notarytool
# keychain profile (made once with `xcrun notarytool store-credentials`).
#
#     SIGN_IDENTITY="Developer ID Application: Name (TEAMID)" NOTARY_PROFILE=localsearch \
#         packaging/macos/sign-and-notarize.sh [dist/localsearch.app]
set -euo pipefail
cd "$(dirname "$0")/../.."
APP=${1:-dist/localsearch.app}
: "${SIGN_IDENTITY:?set SIGN_IDENTITY to your Developer ID Application identity}"
: "${NOTARY_PROFILE:?set NOTARY_PROFILE to a notarytool keychain profile}"
ENTITLEMENTS=packaging/macos/entitlements.plist
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
DMG=dist/localsearch-$VERSION-macos-$(uname -m).dmg

sign() { codesign --force --timestamp --options runtime --entitlements "$ENTITLEMENTS" --sign "$SIGN_IDENTITY" "$@"; }

# Inside out: every library and executable first, the app last (--deep is not for signing).
find "$APP/Contents" -type f \( -name '*.dylib' -o -name '*.so' -o -perm -u+x \) -print0 |
    while IFS= read -r -d '' file; do
        if file "$file" | grep -q "Mach-O"; then sign "$file"; fi
    done
sign "$APP"
codesign --verify --deep --strict --verbose=2 "$APP"

# Notarize the app (as a zip), staple the ticket so Gatekeeper needs no network.
ZIP=$(mktemp -d)/localsearch.zip
ditto -c -k --keepParent "$APP" "$ZIP"
xcrun notarytool submit "$ZIP" --keychain-profile "$NOTARY_PROFILE" --wait
xcrun stapler staple "$APP"

# The disk image people download: the app and a link to /Applications to drag it onto.
STAGE=$(mktemp -d)
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname localsearch -srcfolder "$STAGE" -ov -format UDZO "$DMG"
codesign --force --timestamp --sign "$SIGN_IDENTITY" "$DMG"
xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
xcrun stapler staple "$DMG"
spctl --assess --type open --context context:primary-signature --verbose "$DMG"
echo "signed and notarized: $DMG"
