"""Bundles: one directory that runs an agent on one target, with a manifest that proves it whole.

    dist/rpi5/
      bundle.toml      what, for which target, runtime settings, SHA-256 and size of every file
      model/           the GGUF file (or the ONNX folder's files)
      adapters/        GGUF LoRA adapters (a single one, or a decoupled selector + arguments set)
      tools/           the user's tools module, when it is a file of their own
      tools.json       the tools' names, descriptions, effects and JSON Schemas
      grammars.json    their tool-call grammars, precompiled (no JSON-Schema converter needed)
      run.sh           the launcher
      README.md        how to install the runtime on the device, run and verify

Three modules, so that a device loads only what it needs:
  edgeagent/manifest.py  reading and writing bundle.toml, paths kept inside, hashes: the
                         device's side, which Agent.from_bundle uses (and nothing else here)
  build.py               planning, converting and writing a bundle (the build machine's side)
  verify.py              every check `edgeagent verify` runs
"""
