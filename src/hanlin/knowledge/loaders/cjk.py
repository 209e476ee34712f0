"""Tell short GBK text from Korean: both use the same EUC byte layout, so bytes cannot decide.

charset-normalizer sometimes reads a few lines of GBK (say, a small Chinese CSV) as Korean
CP949, which turns them into Hangul gibberish. When that happens we decode the bytes both ways
and keep the reading whose characters are the more common ones in their language.
"""

from __future__ import annotations

# The most frequent simplified Chinese characters (Jun Da's corpus order, about the top 1000).
COMMON_HANZI = frozenset(
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年"
    "过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心"
    "她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间"
    "由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给"
    "世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变"
    "四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社"
    "便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北"
    "边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济"
    "车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团"
    "集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企"
    "八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考"
    "落青随选列武红响虽推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音"
    "跟志底站严巴例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采"
    "举杀攻父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普"
    "怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆"
    "习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策演简卡罪判担"
    "州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善妈刘读啊超免压银买皇养伊怀执副乱"
    "抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛托央户烈洋哥索胡款靠评版"
    "宝座释景顾弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括舰鱼杂误湾"
    "吉减编楚肯测败屋跑梦散温困剑渐封救贵枪缺楼县尚毫移娘朋画班智亦耳恩短掌恐遗固席松秘谢鲁遇康"
    "虑幸均销钟诗藏赶剧票损忽巨炮旧端探湖录叶春乡附吸予礼港雨呀板庭妇归睛饭额含顺输摇招婚脱补谓"
    "督毒油疗旅泽材灭逐莫笔亡鲜词圣择寻厂睡博勒烟授诺伦岸奥唐卖俄炸载洛健堂旁宫喝借君禁阴园谋宋"
    "避抓荣姑孙逃牙束跳顶玉镇雪午练迫爷篇肉嘴馆遍凡础洞卷坦牛宁纸诸训私庄祖丝翻暴森塔默握戏隐熟"
)
# The most frequent Hangul syllables, including common family names.
COMMON_HANGUL = frozenset(
    "이다는의에하고을가로지서한기도사리자어들를시수나대정인일있해아적전주것요보니부게만그되과상여"
    "면구국문장라습내우제원성동소무마없관생연신비실경러치방금학위화개분물세중계까유안통거날때말업"
    "회모오미저더원모두같많우리네님씨김박최조강윤임권황송류홍배백허남심노양"
)
KOREAN_ENCODINGS = frozenset({"cp949", "euc_kr", "johab", "iso2022_kr"})


def common_share(text: str, common: frozenset[str], lo: str, hi: str) -> float:
    """Of the characters of ``text`` in the range ``lo..hi``, the share found in ``common``."""
    chars = [c for c in text if lo <= c <= hi]
    return sum(c in common for c in chars) / len(chars) if chars else 0.0


def gbk_reading_if_better(data: bytes, korean_text: str) -> str | None:
    """The GB18030 reading of ``data`` when it looks more like Chinese than the Korean one does."""
    try:
        chinese = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    zh = common_share(chinese, COMMON_HANZI, "\u4e00", "\u9fff")
    ko = common_share(korean_text, COMMON_HANGUL, "\uac00", "\ud7a3")
    return chinese if zh > ko else None
