"""trialkit.exports"""
