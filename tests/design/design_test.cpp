// DesignPoint and AccumulatorSpec strings: canonical round trips and clear refusals.
#include <gtest/gtest.h>

#include "numerics/design.h"
#include "base/errors.h"

namespace gsqhw {
namespace {

TEST(AccumulatorSpec, CanonicalStringsRoundTrip) {
  for (const char* text : {"fp32", "fixed32.16", "fixed64.0", "fixed24.-4", "fixed2.40"}) {
    EXPECT_EQ(AccumulatorSpec::parse(text).str(), text);
  }
  AccumulatorSpec fixed = AccumulatorSpec::parse("fixed48.20");
  EXPECT_EQ(fixed.kind, AccumulatorSpec::Kind::fixed);
  EXPECT_EQ(fixed.width, 48);
  EXPECT_EQ(fixed.frac_bits, 20);
}

TEST(AccumulatorSpec, RefusesMalformedAndOutOfRange) {
  for (const char* text : {"", "fp16", "fixed", "fixed32", "fixed.16", "fixed1.0", "fixed65.0",
                           "fixed32.x", "fixed32.16.1", "fixed32.999"}) {
    EXPECT_THROW(AccumulatorSpec::parse(text), UsageError) << text;
  }
}

TEST(DesignPoint, ShortFormFillsEveryDefaultAndPrintsCanonically) {
  DesignPoint design = DesignPoint::parse("gse:b=6@array4x8");
  EXPECT_EQ(design.level, DesignPoint::Level::array);
  EXPECT_EQ(design.rows, 4);
  EXPECT_EQ(design.cols, 8);
  EXPECT_EQ(design.str(),
            "gse:b=6,g=32,e=5,scale=floor,round=rne,range=symmetric@array4x8,acc=fixed32.16,"
            "flow=os,pipe=1");
  // The canonical string parses back to the same design.
  EXPECT_EQ(DesignPoint::parse(design.str()), design);
}

TEST(DesignPoint, EveryOptionRoundTrips) {
  const char* canonical = "fp8:e4m3,sat=satfinite,block=0@core16x2,acc=fp32,flow=ws,pipe=3";
  DesignPoint design = DesignPoint::parse(canonical);
  EXPECT_EQ(design.str(), canonical);
  EXPECT_EQ(design.level, DesignPoint::Level::core);
  EXPECT_EQ(design.dataflow, DesignPoint::Dataflow::weight_stationary);
  EXPECT_EQ(design.pipeline, 3);
  EXPECT_EQ(design.acc.kind, AccumulatorSpec::Kind::fp32);
}

TEST(DesignPoint, SlugIsFilesystemSafeAndDistinguishesDesigns) {
  DesignPoint a = DesignPoint::parse("gse:b=6@array4x4");
  DesignPoint b = DesignPoint::parse("gse:b=6@array4x4,pipe=2");
  EXPECT_NE(a.slug(), b.slug());
  for (char ch : a.slug()) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-')
        << a.slug();
  }
}

// The UsageError message parsing `text` gives, "<no error>" when it parses.
std::string parse_error_of(const char* text) {
  try {
    DesignPoint::parse(text);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(DesignPoint, RefusesImpossibleDesignsNamingTheLimit) {
  EXPECT_NE(parse_error_of("gse:b=6@array0x4").find("rows R = 0"), std::string::npos);
  EXPECT_NE(parse_error_of("gse:b=6@array4x65").find("columns C = 65"), std::string::npos);
  EXPECT_NE(parse_error_of("gse:b=6@pe,pipe=9").find("pipe = 9"), std::string::npos);
  EXPECT_NE(parse_error_of("gse:b=6@tile4x4").find("not one of pe"), std::string::npos);
  EXPECT_NE(parse_error_of("gse:b=6").find("needs <format>@<level>"), std::string::npos);
  EXPECT_NE(parse_error_of("gse:b=6@pe,flow=diag").find("dataflow 'diag'"), std::string::npos);
  EXPECT_NE(parse_error_of("gse:b=6@pe,speed=9").find("unknown design option"), std::string::npos);
  EXPECT_THROW(DesignPoint::parse("gse:b=1@pe"), UsageError);  // the format's own limit
}

TEST(DesignPoint, SharedAlignmentIsPrintedOnlyWhenSet) {
  DesignPoint shared = DesignPoint::parse("gse:b=6@array4x4,acc=fixed32.16,align=shared");
  EXPECT_EQ(shared.alignment, DesignPoint::Alignment::shared_column);
  EXPECT_EQ(shared.str(),
            "gse:b=6,g=32,e=5,scale=floor,round=rne,range=symmetric@array4x4,acc=fixed32.16,"
            "flow=os,pipe=1,align=shared");
  EXPECT_EQ(DesignPoint::parse(shared.str()), shared);
  // align=pe is the default and leaves the canonical string (and so every key) unchanged.
  DesignPoint per_pe = DesignPoint::parse("gse:b=6@array4x4,acc=fixed32.16,align=pe");
  EXPECT_EQ(per_pe, DesignPoint::parse("gse:b=6@array4x4,acc=fixed32.16"));
  EXPECT_EQ(per_pe.str().find("align"), std::string::npos);
  EXPECT_NE(per_pe.slug(), shared.slug());
  EXPECT_NO_THROW(DesignPoint::parse("gse:b=6@core8x8,align=shared"));
}

TEST(DesignPoint, SharedAlignmentIsRefusedWhereItMeansNothing) {
  // FP8 E4M3 arrays share the accumulation of exact group sums (align=shared,group=G); E5M2's
  // group sums would need more than 53 bits.
  EXPECT_NE(parse_error_of("fp8:e5m2@array4x4,acc=fp32,align=shared").find("bits, more than 53"),
            std::string::npos);
  EXPECT_NE(parse_error_of("int8@array2x2,acc=fixed32.0,align=shared").find("has no groups"),
            std::string::npos);
  EXPECT_NE(parse_error_of("gse:b=6@pe,align=shared").find("single PE"), std::string::npos);
  EXPECT_NE(parse_error_of("gse:b=6@array2x2,align=column").find("alignment 'column'"),
            std::string::npos);
}

}  // namespace
}  // namespace gsqhw
