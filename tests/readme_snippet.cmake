# Checks that a README code block and a compiled test source hold the same code.
#   cmake -DREADME=README.md -DSOURCE=tests/nn/readme_cell_test.cpp -DTAG="cell example" -P readme_snippet.cmake
# README: the lines between "<!-- README TAG begin -->" and "<!-- README TAG end -->", without the
# ``` fences. SOURCE: the lines between "// README TAG begin" and "// README TAG end".
file(READ ${README} readme)
file(READ ${SOURCE} source)
string(REGEX MATCH "<!-- README ${TAG} begin -->\n```cpp\n(.*)```\n<!-- README ${TAG} end -->" _ "${readme}")
set(from_readme "${CMAKE_MATCH_1}")
string(REGEX MATCH "// README ${TAG} begin\n(.*)// README ${TAG} end" _ "${source}")
set(from_source "${CMAKE_MATCH_1}")
if(from_readme STREQUAL "")
  message(FATAL_ERROR "${README}: no block marked '<!-- README ${TAG} begin -->'")
endif()
if(from_source STREQUAL "")
  message(FATAL_ERROR "${SOURCE}: no block marked '// README ${TAG} begin'")
endif()
if(NOT from_readme STREQUAL from_source)
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/readme_block.txt "${from_readme}")
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/source_block.txt "${from_source}")
  message(FATAL_ERROR "The README's '${TAG}' block differs from ${SOURCE}; compare "
                      "${CMAKE_CURRENT_BINARY_DIR}/readme_block.txt and source_block.txt")
endif()
message(STATUS "README '${TAG}' block matches ${SOURCE}")
