{
  "variables": {
    "gk_sanitize%": 0
  },
  "targets": [
    {
      "target_name": "guardkernel",
      "sources": [
        "native/addon.cc",
        "native/aead_blocks.cc",
        "native/args.cc",
        "native/audit_line.cc",
        "native/decision_cache.cc",
        "native/decision_cache_binding.cc",
        "native/digest_functions.cc",
        "native/form_memo.cc",
        "native/gate_line.cc",
        "native/gate_line_binding.cc",
        "native/hmac_key.cc",
        "native/hmac_sha256.cc",
        "native/replay_binding.cc",
        "native/replay_store.cc",
        "native/sandbox_args.cc",
        "native/sandbox_binding.cc",
        "native/sandbox_check.cc",
        "native/seeded_hash.cc",
        "native/sha256.cc",
        "native/sha256_shani.cc",
        "native/utf8_encode.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "cuda"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "10.15",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"] }
      },
      "conditions": [
        ["gk_sanitize==1", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g", "-O1"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ]
}
