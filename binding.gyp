{
  "variables": {
    "gk_sanitize%": 0
  },
  "targets": [
    {
      "target_name": "guardkernel",
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/aead/aead_blocks.cc",
        "native/audit/audit_line.cc",
        "native/hash/digest_functions.cc",
        "native/hash/form_memo.cc",
        "native/hash/hmac_key.cc",
        "native/hash/hmac_sha256.cc",
        "native/hash/seeded_hash.cc",
        "native/hash/sha256.cc",
        "native/hash/sha256_shani.cc",
        "native/ipc/gate_line.cc",
        "native/ipc/gate_line_binding.cc",
        "native/ipc/peer_credentials.cc",
        "native/jcs/jcs_number.cc",
        "native/jcs/utf8_encode.cc",
        "native/k2k/sandbox_args.cc",
        "native/k2k/sandbox_binding.cc",
        "native/k2k/sandbox_check.cc",
        "native/sandbox/process_sandbox_linux.cc",
        "native/sandbox/process_sandbox_other.cc",
        "native/stores/decision_cache.cc",
        "native/stores/decision_cache_binding.cc",
        "native/stores/replay_binding.cc",
        "native/stores/replay_store.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native", "cuda"],
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
