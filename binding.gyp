{
  "targets": [
    {
      "target_name": "rubidium",
      "sources": ["native/rubidium.c", "native/parse.c", "native/batch.c", "native/aead.c", "native/napi-util.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
