; Inno Setup script for localsearch on Windows (compile with ISCC 6 on Windows, after
; PyInstaller built dist\localsearch\ with packaging\localsearch.spec):
;
;     iscc /DAppVersion=0.1.0 packaging\windows\localsearch.iss
;
; Installs per user by default (no administrator needed; the dialog offers all users),
; adds a Start menu entry, optionally a desktop icon and start at login, and removes
; everything it installed on uninstall. The index and settings in %LOCALAPPDATA% stay
; unless the user deletes them: they are the user's data.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "localsearch"
#define AppExe "localsearch.exe"

[Setup]
; One id for the life of the app: upgrades and uninstall find it by this.
AppId={{6C1B5E2A-4D7F-4B8E-9A51-3E0C2D9F7A14}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=localsearch developers
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=localsearch-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\assets\icons\localsearch.ico
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "startatlogin"; Description: "Start localsearch when I log in (keeps watching my folders)"; GroupDescription: "Background:"; Flags: unchecked

[Files]
; The whole PyInstaller folder: localsearch.exe (the window), localsearch-cli.exe (the
; command line) and _internal\ (Python, Qt, llama.cpp with its CPU variants, the model).
Source: "..\..\dist\localsearch\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon
Name: "{userstartup}\{#AppName}"; Filename: "{app}\{#AppExe}"; Parameters: "gui --minimized"; Tasks: startatlogin

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
