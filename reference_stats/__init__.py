"""Reference statistics shipped with evalsuite: `manifest.json` lists them (installed as
`evalsuite.reference_stats`)."""
