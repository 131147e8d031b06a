"""trialwright.exports"""
