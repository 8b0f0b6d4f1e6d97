#include "runner/tokenizer/post_processor.h"

#include <string>

namespace tokenizer {

namespace {

TokenId parse_id(const JsonView& v) {
    const auto id = v.as_int();
    if (id < 0 || id > 0x7FFFFFFF) v.fail("token id " + std::to_string(id) + " out of range");
    return static_cast<TokenId>(id);
}

SpecialTokenFrame parse_template(const JsonView& json) {
    SpecialTokenFrame frame;
    const auto single = json.at("single");
    if (!single.is_array()) single.expected("an array");
    const auto specials = json.find("special_tokens");
    bool seen_sequence = false;
    for (std::size_t i = 0; i < single.size(); ++i) {
        const auto item = single.item(i);
        if (item.has("Sequence")) {
            const auto& which = item.at("Sequence").at("id").as_string();
            if (which != "A")
                item.at("Sequence").at("id").fail("a single-sequence template can only hold $A, found $" + which);
            if (seen_sequence) item.fail("$A appears twice in the template");
            seen_sequence = true;
            continue;
        }
        if (!item.has("SpecialToken")) item.fail("expected a SpecialToken or a Sequence");
        const auto name_view = item.at("SpecialToken").at("id");
        const auto& name = name_view.as_string();
        if (specials.is_null() || !specials.has(name))
            name_view.fail("special token \"" + name + "\" is not defined in special_tokens");
        const auto ids = specials.at(name).at("ids");
        if (!ids.is_array()) ids.expected("an array");
        auto& target = seen_sequence ? frame.suffix : frame.prefix;
        for (std::size_t k = 0; k < ids.size(); ++k) target.push_back(parse_id(ids.item(k)));
    }
    if (!seen_sequence) single.fail("the template has no $A");
    return frame;
}

TokenId parse_pair_id(const JsonView& pair) {
    if (!pair.is_array() || pair.size() != 2) pair.expected("a [token, id] pair");
    return parse_id(pair.item(1));
}

}  // namespace

SpecialTokenFrame parse_post_processor(const JsonView& json) {
    if (json.is_null()) return {};
    const auto& type = json.at("type").as_string();
    if (type == "ByteLevel") return {};  // only trims offsets, which we do not produce
    if (type == "TemplateProcessing") return parse_template(json);
    if (type == "RobertaProcessing" || type == "BertProcessing")
        return {{parse_pair_id(json.at("cls"))}, {parse_pair_id(json.at("sep"))}};
    if (type == "Sequence") {
        SpecialTokenFrame frame;
        const auto list = json.at("processors");
        if (!list.is_array()) list.expected("an array");
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto step = parse_post_processor(list.item(i));
            frame.prefix.insert(frame.prefix.begin(), step.prefix.begin(), step.prefix.end());
            frame.suffix.insert(frame.suffix.end(), step.suffix.begin(), step.suffix.end());
        }
        return frame;
    }
    json.at("type").fail("unsupported post-processor type \"" + type +
                         "\" (supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)");
}

}  // namespace tokenizer
