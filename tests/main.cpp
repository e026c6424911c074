// The test runner: every tests/<folder>/<name>_test.cpp holds one suite named <name>.
#define BOOST_TEST_MODULE xgrad
#include <boost/test/unit_test.hpp>
