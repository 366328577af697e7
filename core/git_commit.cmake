# Writes OUT (a header defining TILESCALE_GIT_COMMIT) from `git rev-parse HEAD` of SRC, with
# "-dirty" if the work tree differs from HEAD, or "unknown" outside a git checkout. Run at every
# build (core/CMakeLists.txt); configure_file rewrites OUT only when the text changes, so an
# unchanged commit recompiles nothing.
execute_process(COMMAND git -C "${SRC}" rev-parse HEAD OUTPUT_VARIABLE commit
                RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT rc EQUAL 0 OR commit STREQUAL "")
  set(commit "unknown")
else()
  execute_process(COMMAND git -C "${SRC}" diff --quiet HEAD -- RESULT_VARIABLE dirty ERROR_QUIET)
  if(NOT dirty EQUAL 0)
    set(commit "${commit}-dirty")
  endif()
endif()
set(TILESCALE_GIT_COMMIT "${commit}")
configure_file("${IN}" "${OUT}" @ONLY)
