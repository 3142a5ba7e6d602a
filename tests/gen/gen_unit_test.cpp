// Unit tests of the RTL generator: text helpers, design validation, manifest contents.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "gen/generator.h"
#include "gen/pe_spec.h"
#include "gen/verilog_text.h"
#include "base/errors.h"

namespace gsqhw {
namespace {

TEST(VerilogText, SizedLiterals) {
  EXPECT_EQ(gen::vlit(5, 3), "5'd3");
  EXPECT_EQ(gen::vlit(12, -126, true), "-12'sd126");
  EXPECT_EQ(gen::vlit(12, 127, true), "12'sd127");
  EXPECT_THROW(gen::vlit(4, 16), std::logic_error);
  EXPECT_THROW(gen::vlit(8, 128, true), std::logic_error);
  EXPECT_EQ(gen::bits_for_signed_range(-129, 5), 9);
  EXPECT_EQ(gen::bits_for_unsigned(32), 6);
  EXPECT_EQ(gen::ceil_log2(32), 5);
  EXPECT_EQ(gen::ceil_log2(33), 6);
  EXPECT_EQ(gen::ceil_log2(1), 0);
}

TEST(VerilogText, PriorityEncoderCoversEveryBit) {
  std::string text = gen::msb_index_assign("idx", "v", 4, 2);
  EXPECT_NE(text.find("v[3] ? 2'd3"), std::string::npos);
  EXPECT_NE(text.find("v[1] ? 2'd1 : 2'd0;"), std::string::npos);
}

TEST(PeSpec, DerivedWidthsFollowTheFormat) {
  auto pe = gen::make_pe_spec(DesignPoint::parse("gse:b=6,g=32,e=5@pe,acc=fixed32.16"));
  EXPECT_EQ(pe.group_sum_width(), 17);  // 2b + log2 G
  EXPECT_EQ(pe.product_width(), 12);
  EXPECT_EQ(pe.exp_code_width(), 6);
  EXPECT_EQ(pe.value_offset(), -2 * 15 - 2 * 4);
  auto fp8 = gen::make_pe_spec(DesignPoint::parse("fp8:e4m3@pe,acc=fp32"));
  EXPECT_EQ(fp8.format.code_bits, 8);
  EXPECT_EQ(fp8.product_width(), 8);  // 4-bit significands
  EXPECT_FALSE(fp8.format.mf_ieee_specials);
  auto bf16 = gen::make_pe_spec(DesignPoint::parse("bf16@pe,acc=fp32"));
  EXPECT_EQ(bf16.format.code_bits, 16);
  EXPECT_EQ(bf16.value_offset(), -2 * 127 - 14);
}

// The message must name the broken limit.
void expect_refused(const DesignPoint& d, const std::string& needle) {
  try {
    generate_design(d);
    FAIL() << "accepted " << d.str();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Generator, ImpossibleDesignsAreRefusedNamingTheLimit) {
  DesignPoint d = DesignPoint::parse("gse:b=6@array4x4,acc=fixed32.16");
  DesignPoint bad = d;
  bad.format = "gse:b=9,g=32,e=5,scale=floor,round=rne,range=symmetric";
  expect_refused(bad, "b=9");
  bad = d;
  bad.format = "gse:b=1,g=32,e=5,scale=floor,round=rne,range=symmetric";
  expect_refused(bad, "b=1");
  bad = d;
  bad.rows = 0;
  expect_refused(bad, "R = 0");
  bad = d;
  bad.cols = 65;
  expect_refused(bad, "C = 65");
  bad = d;
  bad.pipeline = 5;
  expect_refused(bad, "pipe = 5");
  bad = DesignPoint::parse("gse:b=8,g=256@array2x2,acc=fixed20.4");
  expect_refused(bad, "narrower than the group sum of 24 bits");
  bad = DesignPoint::parse("int8:per=tensor@pe,acc=fixed12.0");
  expect_refused(bad, "narrower than the product of 16 bits");
  bad = d;
  bad.format = "nf4:block=64";
  expect_refused(bad, "'nf4'");
  bad = d;
  bad.format = "fp32";
  expect_refused(bad, "'fp32'");
  bad = DesignPoint::parse("fp8:e4m3,block=32@pe,acc=fp32");
  expect_refused(bad, "block=32");
  GeneratorOptions int_bits;
  int_bits.int_bits = 9;
  EXPECT_THROW(generate_design(DesignPoint::parse("int8@pe,acc=fp32"), int_bits), UsageError);
  int_bits.int_bits = 4;
  EXPECT_THROW(generate_design(DesignPoint::parse("gse:b=4@pe,acc=fp32"), int_bits), UsageError);
}

TEST(Generator, TheSmallestAccumulatorThatHoldsTheGroupSumIsAccepted) {
  EXPECT_NO_THROW(generate_design(DesignPoint::parse("gse:b=8,g=256@pe,acc=fixed24.0")));
}

// Every port the manifest lists is declared in the top module with that width, and nothing
// else is.
void expect_ports_match(const GeneratedDesign& g) {
  const std::string& top_text = g.files.back().second;
  std::regex decl(R"((input|output)\s+(?:wire|reg)\s+(?:\[(\d+):0\]\s+)?(\w+))");
  std::map<std::string, std::pair<std::string, int>> declared;
  auto module_start = top_text.find("module " + g.top);
  auto ports_end = top_text.find(");", module_start);
  std::string header = top_text.substr(module_start, ports_end - module_start);
  for (std::sregex_iterator it(header.begin(), header.end(), decl), end; it != end; ++it) {
    int width = (*it)[2].matched ? std::stoi((*it)[2]) + 1 : 1;
    declared[(*it)[3]] = {(*it)[1] == "input" ? "in" : "out", width};
  }
  ASSERT_EQ(declared.size(), g.manifest["ports"].size()) << header;
  for (const auto& p : g.manifest["ports"]) {
    auto it = declared.find(p["name"].get<std::string>());
    ASSERT_NE(it, declared.end()) << p["name"];
    EXPECT_EQ(it->second.first, p["dir"]) << p["name"];
    EXPECT_EQ(it->second.second, p["width"]) << p["name"];
  }
}

TEST(Generator, ManifestDescribesTheArray) {
  auto g = generate_design(DesignPoint::parse("gse:b=6@array4x3,acc=fixed32.16,pipe=2"));
  const auto& m = g.manifest;
  EXPECT_EQ(g.top, "gsqhw_array");
  EXPECT_EQ(m["top"], "gsqhw_array");
  EXPECT_EQ(m["level"], "array");
  EXPECT_EQ(m["design"], g.design.str());
  EXPECT_EQ(m["slug"], g.design.slug());
  EXPECT_EQ(m["rows"], 4);
  EXPECT_EQ(m["cols"], 3);
  EXPECT_EQ(m["dataflow"], "os");
  EXPECT_EQ(m["pipeline"], 2);
  EXPECT_EQ(m["acc"], "fixed32.16");
  EXPECT_EQ(m["widths"]["code"], 6);
  EXPECT_EQ(m["widths"]["exp"], 5);
  EXPECT_EQ(m["widths"]["acc"], 32);
  EXPECT_EQ(m["timing"]["latency"], 2 + 3);  // pipe + C
  EXPECT_EQ(m["timing"]["drain_beats"], 4);
  EXPECT_EQ(m["timing"]["min_steps_per_tile"], 4);
  EXPECT_EQ(m["timing"]["macs_per_cycle"], 12);
  std::set<std::string> listed;
  for (const auto& f : m["files"]) listed.insert(f.get<std::string>());
  ASSERT_EQ(listed.size(), g.files.size());
  for (const auto& [name, text] : g.files) {
    EXPECT_TRUE(listed.count(name)) << name;
    // One module per file, named like the file, with the generator header.
    std::string module = name.substr(0, name.size() - 2);
    EXPECT_EQ(text.find("// " + module + ": "), 0u) << name;
    EXPECT_NE(text.find("module " + module + " "), std::string::npos) << name;
    EXPECT_NE(text.find("design: " + g.design.str()), std::string::npos) << name;
  }
  EXPECT_EQ(g.files.back().first, "gsqhw_array.v");
  expect_ports_match(g);
}

TEST(Generator, PortsFollowTheFamily) {
  for (const char* spec : {"gse:b=4,g=8,e=4@pe,acc=fixed16.4", "fp8:e5m2@array2x3,acc=fp32",
                           "int8:per=channel@array3x1,acc=fixed32.0", "bf16@pe,acc=fixed32.8"}) {
    auto g = generate_design(DesignPoint::parse(spec));
    SCOPED_TRACE(spec);
    expect_ports_match(g);
    bool groups = g.design.format.rfind("gse", 0) == 0;
    bool has_exp = false;
    for (const auto& p : g.manifest["ports"]) has_exp |= p["name"] == "in_a_exp";
    EXPECT_EQ(has_exp, groups);
  }
  auto pe = generate_design(DesignPoint::parse("fp8:e4m3@pe,acc=fp32,pipe=3"));
  EXPECT_EQ(pe.top, "gsqhw_pe");
  EXPECT_EQ(pe.manifest["timing"]["latency"], 3);
  EXPECT_EQ(pe.manifest["timing"]["drain_beats"], 1);
  EXPECT_EQ(pe.manifest["timing"]["min_steps_per_tile"], 1);
}

TEST(Generator, PlainIntegerBaselineHasBBitCodes) {
  GeneratorOptions options;
  options.int_bits = 5;
  auto g = generate_design(DesignPoint::parse("int8:per=tensor@array2x2,acc=fixed32.16"), options);
  EXPECT_EQ(g.manifest["int_bits"], 5);
  EXPECT_EQ(g.manifest["widths"]["code"], 5);
  EXPECT_NE(g.files.front().second.find("input  wire signed [4:0] a"), std::string::npos);
}

TEST(Generator, GseAccumulatesOncePerGroup) {
  // The prepare/accumulate stages are fed by the group-end pulse, not by every step.
  auto g = generate_design(DesignPoint::parse("gse:b=6@pe,acc=fixed32.16"));
  const std::string& pe = g.files.back().second;
  EXPECT_NE(pe.find(" a_valid = m_valid & group_end;"), std::string::npos);
  auto g4 = generate_design(DesignPoint::parse("gse:b=6@pe,acc=fixed32.16,pipe=4"));
  EXPECT_NE(g4.files.back().second.find("signed [16:0] a_value = group_sum;"),
            std::string::npos);
}

TEST(Generator, SharedColumnGseArray) {
  auto g = generate_design(DesignPoint::parse("gse:b=6@array8x4,acc=fixed32.16,pipe=2,align=shared"));
  EXPECT_EQ(g.manifest["design"],
            "gse:b=6,g=32,e=5,scale=floor,round=rne,range=symmetric@array8x4,acc=fixed32.16,"
            "flow=os,pipe=2,align=shared");
  EXPECT_EQ(g.manifest["architecture"], "shared-column");
  EXPECT_EQ(g.manifest["timing"]["min_steps_per_group"], 8);
  EXPECT_EQ(g.manifest["timing"]["min_steps_per_tile"], 8);
  EXPECT_EQ(g.manifest["timing"]["latency"], 4 + 2 + 1);  // C + pipe + 1
  expect_ports_match(g);
  // The PEs carry no exponent hardware at all.
  for (const auto& [name, text] : g.files) {
    if (name == "gsqhw_pe_gsum.v") {
      EXPECT_EQ(text.find("exp"), std::string::npos);
    }
  }
  auto plain = generate_design(DesignPoint::parse("gse:b=6@array8x4,acc=fixed32.16"));
  EXPECT_EQ(plain.manifest["architecture"], "per-pe");
  EXPECT_EQ(plain.manifest["timing"]["min_steps_per_group"], 1);
  // A design point built in code (not parsed) is checked by the generator too.
  DesignPoint pe = DesignPoint::parse("gse:b=6@pe,acc=fp32");
  pe.alignment = DesignPoint::Alignment::shared_column;
  EXPECT_THROW(generate_design(pe), UsageError);
  DesignPoint fp8 = DesignPoint::parse("fp8:e4m3@array2x2,acc=fp32");
  fp8.alignment = DesignPoint::Alignment::shared_column;
  EXPECT_THROW(generate_design(fp8), UsageError);
}

TEST(Generator, WeightStationaryArray) {
  for (const char* spec : {"gse:b=6@array4x3,acc=fixed32.16,flow=ws,pipe=2",
                           "fp8:e4m3@array2x5,acc=fp32,flow=ws,pipe=4",
                           "int8@array1x1,acc=fixed32.0,flow=ws"}) {
    SCOPED_TRACE(spec);
    auto g = generate_design(DesignPoint::parse(spec));
    const auto& m = g.manifest;
    EXPECT_EQ(m["dataflow"], "ws");
    EXPECT_EQ(m["architecture"], "weight-stationary");
    EXPECT_EQ(m["timing"]["chunk_steps"], g.design.rows);
    EXPECT_EQ(m["timing"]["weight_preload"], g.design.rows);
    EXPECT_EQ(m["timing"]["drain_beats"], g.design.rows);
    expect_ports_match(g);
    std::set<std::string> names;
    for (const auto& p : m["ports"]) names.insert(p["name"].get<std::string>());
    EXPECT_TRUE(names.count("in_w") && names.count("in_w_valid") && names.count("in_w_row"));
    EXPECT_FALSE(names.count("in_b"));
    bool gse = g.design.format.rfind("gse", 0) == 0;
    EXPECT_EQ(names.count("in_group_first"), gse ? 1u : 0u);
    // GSE: the PEs add exact integers; the column unit applies exponents once per group.
    bool has_group_acc = false;
    for (const auto& [name, text] : g.files) has_group_acc |= name == "gsqhw_group_acc.v";
    EXPECT_EQ(has_group_acc, gse);
  }
  // Latency: C + pipe - 1 (the PE's cuts lag the partial sums), GSE one more (column unit).
  EXPECT_EQ(generate_design(DesignPoint::parse("gse:b=6@array4x3,flow=ws,pipe=2"))
                .manifest["timing"]["latency"],
            3 + 2);
  EXPECT_EQ(generate_design(DesignPoint::parse("fp8:e4m3@array2x5,acc=fp32,flow=ws,pipe=4"))
                .manifest["timing"]["latency"],
            5 + 4 - 1);
  expect_refused(DesignPoint::parse("gse:b=6@pe,flow=ws"), "array1x1,flow=ws");
  expect_refused(DesignPoint::parse("gse:b=6@array2x2,flow=ws,align=shared"), "drop align=shared");
}

TEST(Generator, OutputIsDeterministic) {
  auto d = DesignPoint::parse("fp8:e4m3@array2x2,acc=fp32");
  auto a = generate_design(d), b = generate_design(d);
  EXPECT_EQ(a.files, b.files);
  EXPECT_EQ(a.manifest, b.manifest);
}

}  // namespace
}  // namespace gsqhw
