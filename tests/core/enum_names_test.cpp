// One name table per enum (core/enum_names.h): names and values round-trip, and an unknown name is
// an InputError that quotes the text and lists every allowed name, naming no option (callers add
// it).
#include "tilescale/core/enum_names.h"

#include <gtest/gtest.h>

#include <string>

namespace tilescale {
namespace {

enum class Fruit { Apple, Pear, Fig };
constexpr auto kFruitNames = make_enum_names<Fruit>(
    "fruit", {{Fruit::Apple, "apple"}, {Fruit::Pear, "pear"}, {Fruit::Fig, "fig"}});

TEST(EnumNames, NamesAndValuesRoundTrip) {
  for (Fruit f : {Fruit::Apple, Fruit::Pear, Fruit::Fig})
    EXPECT_EQ(kFruitNames.parse(kFruitNames.name(f)), f);
  EXPECT_STREQ(kFruitNames.name(Fruit::Pear), "pear");
  EXPECT_STREQ(kFruitNames.name(static_cast<Fruit>(9)), "?");
}

TEST(EnumNames, ListJoinsInTableOrder) {
  EXPECT_EQ(kFruitNames.list(", "), "apple, pear, fig");
  EXPECT_EQ(kFruitNames.list(" | "), "apple | pear | fig");
}

TEST(EnumNames, UnknownNameQuotesTheTextAndListsTheAllowedNames) {
  try {
    kFruitNames.parse("Apple");  // names are case-sensitive
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "unknown fruit 'Apple' (allowed: apple, pear, fig)");
  }
  EXPECT_THROW(kFruitNames.parse(""), InputError);
}

}  // namespace
}  // namespace tilescale
